# Satchel — the two commands a new machine needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/satchel
RUN_HOME  ?= .satchel-devnet
FUZZTIME  ?= 60s
BENCHTIME ?= 1x

.PHONY: all build run test bench fuzz faults lint proto clean

all: build

## build: compile the satchel binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/satchel

## run: start the local devnet (state in $(RUN_HOME); Ctrl-C stops, run again resumes)
run: build
	./$(BIN) devnet --home $(RUN_HOME)

## test: vet, then every unit and integration test with the race detector
## (fuzz targets run their committed seed corpus as ordinary tests)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## bench: throughput and memory benchmarks, each reported against a ceiling measured in the same run
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./...

## fuzz: run every fuzz target in the repo (each func FuzzX in a _test.go file), one after
## the other, for FUZZTIME each (failing inputs land in testdata/fuzz; keep the useful ones)
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' --exclude-dir=.git --exclude-dir=bin '^func Fuzz' . | sort); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz: $$t in $$(dirname $$f) for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$(dirname $$f); \
		done; \
	done

## faults: the long form of the fault suite (minutes): 50 kills, 10,000 fuzzed frames per protocol;
## figures go to faults-report.md (copy them to docs/RELIABILITY.md, "Fault suite figures")
faults:
	rm -f faults-report.md
	FAULTS_LONG=1 FAULTS_REPORT=$(CURDIR)/faults-report.md $(GO) test -race -count=1 -timeout 60m -v ./faults/
	@cat faults-report.md

## lint: go vet and a gofmt check
lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## proto: regenerate the Go code of every .proto file (needs protoc; protoc-gen-go is pinned in go.mod)
proto:
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler"; exit 1; }
	$(GO) build -o bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	@files=$$(find . -name '*.proto' -not -path './bin/*' | sort); \
	if [ -z "$$files" ]; then echo "no .proto files"; exit 0; fi; \
	protoc --plugin=protoc-gen-go=bin/protoc-gen-go --go_out=. --go_opt=module=github.com/satchel-net/satchel $$files

clean:
	rm -rf bin
