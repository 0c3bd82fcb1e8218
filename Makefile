# staticroute — build, test and demo targets. Run `make help`.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

BIN       ?= $(CURDIR)/bin
GO        ?= go
K8S_VER   := v1.37.2
K8S_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(K8S_VER) \
               -X k8s.io/component-base/version.gitMajor=1 \
               -X k8s.io/component-base/version.gitMinor=37 \
               -X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VER) \
               -X k8s.io/client-go/pkg/version.gitMajor=1 \
               -X k8s.io/client-go/pkg/version.gitMinor=37
FUZZTIME  ?= 10s

export KUBEBUILDER_ASSETS := $(BIN)

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN{FS=":.*##"} /^[a-zA-Z_-]+:.*##/{printf "  %-14s %s\n",$$1,$$2}' $(MAKEFILE_LIST)

##@ Build

.PHONY: build
build: $(BIN)/webhook $(BIN)/certs $(BIN)/node-router $(BIN)/kubectl-staticroute ## Build the project's binaries into ./bin.

$(BIN)/%: FORCE
	$(GO) build -ldflags '-X github.com/staticroute/staticroute/internal/version.release=$(VERSION)' -o $@ ./cmd/$*

.PHONY: FORCE
FORCE:

# A test node: kubelet, kube-proxy, the scheduler, containerd (no cgo: the
# snapshotters that need C libraries left out) and the CNI plugins.
NODE_TOOLS := $(BIN)/kubelet $(BIN)/kube-proxy $(BIN)/kube-scheduler $(BIN)/containerd $(BIN)/containerd-shim-runc-v2 $(BIN)/ctr $(BIN)/cni/bridge $(BIN)/cni/host-local $(BIN)/cni/loopback $(BIN)/cni/portmap

.PHONY: tools
tools: $(BIN)/kube-apiserver $(BIN)/kubectl $(BIN)/kube-controller-manager $(BIN)/etcd $(BIN)/controller-gen $(BIN)/helm $(NODE_TOOLS) ## Build kube-apiserver, etcd, kubectl, controller-gen, helm and a test node's kubelet, containerd and CNI plugins from the Go module proxy (cached).

$(BIN)/kube-apiserver $(BIN)/kubectl $(BIN)/kube-controller-manager: hack/tools/kube/go.mod
	cd hack/tools/kube && $(GO) build -ldflags '$(K8S_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/$(notdir $@)

$(BIN)/kubelet $(BIN)/kube-proxy $(BIN)/kube-scheduler: hack/tools/kube/go.mod
	cd hack/tools/kube && $(GO) build -ldflags '$(K8S_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/$(notdir $@)

$(BIN)/containerd $(BIN)/containerd-shim-runc-v2 $(BIN)/ctr: hack/tools/node/go.mod
	cd hack/tools/node && CGO_ENABLED=0 $(GO) build -tags 'no_btrfs no_devmapper no_zfs' -o $@ github.com/containerd/containerd/v2/cmd/$(notdir $@)

$(BIN)/cni/bridge $(BIN)/cni/loopback: hack/tools/node/go.mod
	cd hack/tools/node && CGO_ENABLED=0 $(GO) build -o $@ github.com/containernetworking/plugins/plugins/main/$(notdir $@)

$(BIN)/cni/host-local: hack/tools/node/go.mod
	cd hack/tools/node && CGO_ENABLED=0 $(GO) build -o $@ github.com/containernetworking/plugins/plugins/ipam/$(notdir $@)

$(BIN)/cni/portmap: hack/tools/node/go.mod
	cd hack/tools/node && CGO_ENABLED=0 $(GO) build -o $@ github.com/containernetworking/plugins/plugins/meta/$(notdir $@)

$(BIN)/etcd: hack/tools/etcd/go.mod
	cd hack/tools/etcd && $(GO) build -o $@ go.etcd.io/etcd/server/v3

$(BIN)/controller-gen: hack/tools/gen/go.mod
	cd hack/tools/gen && $(GO) build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(BIN)/helm: hack/tools/helm/go.mod
	cd hack/tools/helm && $(GO) build -o $@ helm.sh/helm/v4/cmd/helm

$(BIN)/staticcheck: hack/tools/lint/go.mod
	cd hack/tools/lint && $(GO) build -o $@ honnef.co/go/tools/cmd/staticcheck

##@ Release

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REGISTRY ?= ghcr.io/staticroute

.PHONY: images
images: ## OCI image layouts of webhook and node-router in dist/images (no Docker, nothing pulled; same commit, same digests).
	$(GO) run ./hack/release -images-only -version $(VERSION) -registry $(REGISTRY)

.PHONY: release
release: ## dist/staticroute.yaml: config/default with the images by digest (VERSION=…, REGISTRY=…), and the images.
	$(GO) run ./hack/release -version $(VERSION) -registry $(REGISTRY)

##@ Generate

.PHONY: manifests
manifests: $(BIN)/controller-gen ## Regenerate CRDs and deepcopy from the API types.
	$(BIN)/controller-gen object paths=./api/...
	$(BIN)/controller-gen crd paths=./api/... output:crd:artifacts:config=config/crd/bases

.PHONY: chart
chart: ## Regenerate charts/staticroute's templates and values from config/ (internal/chart).
	$(GO) run ./hack/chart

##@ Demo

.PHONY: prereqs
prereqs: ## Check (and, as root, install from Debian) what the demo and tests need: in a second, before any build.
	@hack/prereqs.sh

.PHONY: demo
demo: prereqs demo-notice $(BIN)/kube-apiserver $(BIN)/kubectl $(BIN)/etcd build ## The old tool's failover tutorial end to end on this machine (as root; HOLD=1 keeps it up).
	$(GO) run ./hack/demo $(if $(NODES),-nodes $(NODES))

# The first build of the control plane is long and says little: say what
# it is before it starts.
.PHONY: demo-notice
demo-notice:
	@test -x $(BIN)/kube-apiserver -a -x $(BIN)/etcd -a -x $(BIN)/kubectl || \
	  echo "First run: building kube-apiserver, kubectl $(K8S_VER) and etcd from the Go module proxy into ./bin (about 10 minutes on 2 cores, longer on a busy machine; cached after), then the demo."

##@ Test

.PHONY: test
test: prereqs test-notice unit-test fuzz e2e ## Run every test: unit, fuzz (FUZZTIME each), end to end (as root).

.PHONY: test-notice
test-notice:
	@test -x $(BIN)/kube-apiserver -a -x $(BIN)/etcd -a -x $(BIN)/kubectl -a -x $(BIN)/kube-controller-manager -a -x $(BIN)/controller-gen -a -x $(BIN)/staticcheck -a -x $(BIN)/helm -a -x $(BIN)/kubelet -a -x $(BIN)/containerd || \
	  echo "First run: building the tools the tests use (kube-apiserver, kubectl, kube-controller-manager, kubelet, kube-proxy, kube-scheduler $(K8S_VER), etcd, containerd, the CNI plugins, controller-gen, staticcheck, helm) from the Go module proxy into ./bin (about 30 minutes on 2 cores, longer on a busy machine; cached after), then the tests (about 12 minutes)."

.PHONY: lint
lint: $(BIN)/staticcheck ## go vet and staticcheck (pinned in hack/tools/lint).
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

.PHONY: unit-test
unit-test: $(BIN)/controller-gen lint ## Unit tests, fuzz seeds, stale-manifest check (after lint).
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /test/e2e)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s).
	hack/fuzz.sh $(FUZZTIME)

.PHONY: e2e
e2e: prereqs tools build ## End-to-end tests against a real kube-apiserver + etcd.
	$(GO) test -count=1 -timeout 30m ./test/...

.PHONY: bench
bench: prereqs tools build bench-e2e ## Every benchmark (see BENCHMARKS.md; root).
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/... ./internal/...

.PHONY: bench-scale
bench-scale: prereqs tools build ## The failover benchmark at NODES=n[,n…] nodes (up to 3,000), FAILOVERS (20) each: convergence, leaks, router CPU, API writes per failover.
	NODES=$(NODES) FAILOVERS=$(FAILOVERS) $(GO) test -run '^$$' -bench FailoverConvergence -benchtime 1x -timeout 240m ./test/e2e/

.PHONY: bench-auto
bench-auto: prereqs tools build ## Automatic failover: gateway death → the last of NODES (20) nodes switched, beside manual kubectl failovers.
	NODES=$(NODES) $(GO) test -run '^$$' -bench AutomaticFailover -benchtime 1x -timeout 30m ./test/e2e/

.PHONY: bench-e2e
bench-e2e: prereqs tools build ## End-to-end benchmarks: webhook latency, router RSS, failover convergence at 5/10/20 nodes (~15 min).
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/...
