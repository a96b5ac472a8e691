# The tokenizer stage: train a byte-level BPE on the corpus (OUT/tokenizer.json), then encode the
# corpus into OUT/train.bin and OUT/val.bin. Each rule depends on the config sections it reads,
# so editing [train] retrains nothing here.

TOKENIZER_JSON := $(OUT)/tokenizer.json
TOKEN_FILES := $(OUT)/train.bin $(OUT)/val.bin

$(TOKENIZER_JSON): $(CORPUS_FILE) $(call section_stamp,tokenizer) | $(MINITX)
	@mkdir -p $(@D)
	$(RUN) tokenizer train --config $(CONFIG) --out $(OUT) --corpus-dir $(CORPUS_DIR)

# The token files' format version (data/token_file.h): an OUT encoded in an older one, which the
# binary no longer reads, lacks this stamp, so the corpus is encoded again once.
TOKEN_FORMAT_STAMP := $(STAMPS)/token-file-format-2
$(TOKEN_FORMAT_STAMP):
	@mkdir -p $(@D) && touch $@

# One command writes both files (grouped target), each atomically.
$(TOKEN_FILES) &: $(TOKENIZER_JSON) $(CORPUS_FILE) $(call section_stamp,data) $(TOKEN_FORMAT_STAMP) | $(MINITX)
	$(RUN) tokenizer encode --config $(CONFIG) --out $(OUT) --corpus-dir $(CORPUS_DIR)

ARTIFACTS += $(TOKENIZER_JSON) $(TOKEN_FILES)
$(eval $(call stage,tokenizer,$(CORPUS_FILE) $(call section_stamp,tokenizer),$(TOKENIZER_JSON)))
$(eval $(call stage,encode,$(CORPUS_FILE) $(TOKENIZER_JSON) $(call section_stamp,data),$(TOKEN_FILES)))

.PHONY: tokenizer
tokenizer: $(TOKENIZER_JSON) $(TOKEN_FILES) ## train the tokenizer and encode the corpus: OUT/tokenizer.json, train.bin, val.bin

# The tests link the reference regex engine the splitter is checked against.
$(TEST_BIN): LDLIBS += -lpcre2-8
