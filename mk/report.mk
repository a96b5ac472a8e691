# The report: every result of OUT in one self-contained page, OUT/report.html (minitx report).
# Included after every stage fragment: its prerequisites are the CSV and JSON files the stages
# listed, so a new stage's table reaches the page by naming its files in ARTIFACTS or
# NONDETERMINISTIC, and the page is redrawn when any of them changes.

REPORT_HTML := $(OUT)/report.html
REPORT_SCRIPTS := $(wildcard scripts/report_*.gp)
REPORT_INPUTS := $(CONFIG) $(OUT)/provenance.json $(filter %.csv %.json %.bin,$(ARTIFACTS) $(NONDETERMINISTIC))

$(REPORT_HTML): $(REPORT_INPUTS) $(REPORT_SCRIPTS) | $(MINITX)
	$(RUN) report --config $(CONFIG) --out $(OUT) --output $@

# The page shows timings, so it is packed but not compared by test-idem, which instead checks
# that the same files give the same page twice.
NONDETERMINISTIC += $(REPORT_HTML)

.PHONY: report
report: $(REPORT_HTML) ## one self-contained page of every result: OUT/report.html

# For scripts/test-idem.sh, which renders the page again from the same files.
.PHONY: print-report
print-report:
	@echo $(REPORT_HTML)
