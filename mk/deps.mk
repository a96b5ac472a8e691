# System packages: checked once (and installed when we may) before the first compile or stage.
# A stamp file, not a phony target, so that an up-to-date tree runs no recipe at all.

# DEPS_STAMP is defined in the Makefile, before any fragment that names it in a rule.
$(DEPS_STAMP): scripts/install-deps.sh
	@mkdir -p $(@D)
	@scripts/install-deps.sh
	@touch $@

.PHONY: deps
deps: ## install the Debian packages minitx needs (runs automatically when missing)
	@scripts/install-deps.sh
	@mkdir -p build && touch $(DEPS_STAMP)
