#!/usr/bin/env bash
# Build the binaries of a real Kubernetes control plane for the end-to-end
# tests, from Go modules only (no Docker, no release downloads):
#
#   kube-apiserver kube-controller-manager kube-scheduler kubectl   (k8s.io/kubernetes)
#   etcd                                                            (go.etcd.io/etcd/server/v3)
#   kwok                                                            (sigs.k8s.io/kwok)
#   karpenter-kwok  Karpenter's KWOK cloud provider                 (sigs.k8s.io/karpenter/kwok)
#   helm            for the chart tests                             (helm.sh/helm/v4)
#   prometheus      only with BUILD_PROMETHEUS=1, for make dashboard (github.com/prometheus/prometheus)
#
# plus kwok-stages.yaml, the KWOK Stage objects that make fake nodes Ready and
# bound pods Running+Ready (copied from the kwok module's kustomize/stage/fast).
#
# Versions come from versions.env (overridable from the environment).
# Output:  ${SPOT_EXTENDER_CACHE:-$HOME/.cache/spot-extender}/k8s-$K8S_VERSION/
#            bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl,etcd,kwok,karpenter-kwok,helm}
#            kwok-stages.yaml
#            karpenter-crds/    (NodePool, NodeClaim, NodeOverlay, KWOKNodeClass CRDs)
#            build.stamp        (versions each part was built from)
#            src/               (generated wrapper modules; scratch)
#
# Progress goes to stderr; on success the bin directory is the only line
# printed on stdout. A second run with the same pins is a near-instant no-op.
#
# Environment knobs:
#   SPOT_EXTENDER_CACHE       cache root (default ~/.cache/spot-extender)
#   SPOT_EXTENDER_BUILD_JOBS  go build -p value (default 2; ~1-2 GiB RSS per job)
#   GO                        go binary (default: `go` on PATH, else /usr/local/go/bin/go)
#   FORCE_REBUILD=1           ignore the stamp and rebuild everything
#   BUILD_PARTS               the parts to build (default all: k8s etcd kwok karpenter helm);
#                             make demo needs only k8s etcd kwok (see the Makefile)
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/cluster/versions.env
. "$HERE/versions.env"

# Recipe revision: bump when this script changes the way binaries are built,
# so that existing caches are rebuilt.
RECIPE=1

START_TS=$(date +%s)
log() { printf '==> %s [%ss]\n' "$*" "$(( $(date +%s) - START_TS ))" >&2; }
die() { printf 'build-bins.sh: ERROR: %s\n' "$*" >&2; exit 1; }
on_err() {  # report unexpected failures once, from the top-level shell only
  local rc=$?
  if (( BASH_SUBSHELL == 0 )); then
    printf 'build-bins.sh: ERROR: command failed (exit %s) at line %s: %s\n' "$rc" "$1" "$2" >&2
  fi
}
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR

ALL_PARTS="k8s etcd kwok karpenter helm"
BUILD_PARTS=${BUILD_PARTS:-$ALL_PARTS}
for p in $BUILD_PARTS; do
  [[ " $ALL_PARTS " == *" $p "* ]] || die "BUILD_PARTS: unknown part '$p' (parts: $ALL_PARTS)"
done
wanted() { [[ " $BUILD_PARTS " == *" $1 "* ]]; }

for v in K8S_VERSION ETCD_VERSION KWOK_VERSION KARPENTER_VERSION HELM_VERSION PROMETHEUS_VERSION; do
  val=${!v}
  [[ -n $val ]] || die "$v is empty"
  [[ $val != v* ]] || die "$v must be given without a leading 'v' (got '$val')"
  [[ $val =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || die "$v='$val' is not a semantic version"
done
[[ $K8S_VERSION == 1.* ]] || die "K8S_VERSION must be 1.x (got $K8S_VERSION)"
[[ $KARPENTER_GOTOOLCHAIN =~ ^(go[0-9]+\.[0-9]+(\.[0-9]+)?|local)$ ]] \
  || die "KARPENTER_GOTOOLCHAIN='$KARPENTER_GOTOOLCHAIN' is not goX.Y.Z or local"

if [[ -z ${GO:-} ]]; then
  if command -v go >/dev/null 2>&1; then GO=go
  elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
  else die "no Go toolchain found (set GO=/path/to/go)"; fi
fi

CACHE_ROOT=${SPOT_EXTENDER_CACHE:-$HOME/.cache/spot-extender}
OUT=$CACHE_ROOT/k8s-$K8S_VERSION
BIN=$OUT/bin
SRC=$OUT/src
STAMP=$OUT/build.stamp
STAGES=$OUT/kwok-stages.yaml
KARPENTER_CRDS=$OUT/karpenter-crds
# The four CRDs Karpenter's KWOK provider needs, by their path in its module.
KARPENTER_CRD_FILES=(
  kwok/charts/crds/karpenter.sh_nodepools.yaml
  kwok/charts/crds/karpenter.sh_nodeclaims.yaml
  kwok/charts/crds/karpenter.sh_nodeoverlays.yaml
  kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml
)
JOBS=${SPOT_EXTENDER_BUILD_JOBS:-2}

K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
TOTAL=0  # binaries to build or check, for the progress lines
for p in $BUILD_PARTS; do if [[ $p == k8s ]]; then TOTAL=$((TOTAL + ${#K8S_BINS[@]})); else TOTAL=$((TOTAL + 1)); fi; done

# Stamp lines: one per part, "<part>=<version> recipe=<n>".
want_line() {
  case $1 in
    k8s) echo "k8s=$K8S_VERSION recipe=$RECIPE" ;;
    etcd) echo "etcd=$ETCD_VERSION recipe=$RECIPE" ;;
    kwok) echo "kwok=$KWOK_VERSION k8s=$K8S_VERSION recipe=$RECIPE" ;;
    karpenter) echo "karpenter=$KARPENTER_VERSION toolchain=$KARPENTER_GOTOOLCHAIN recipe=$RECIPE" ;;
    helm) echo "helm=$HELM_VERSION recipe=$RECIPE" ;;
    prometheus) echo "prometheus=$PROMETHEUS_VERSION recipe=$RECIPE" ;;
  esac
}
karpenter_crds_ok() {
  local f; for f in "${KARPENTER_CRD_FILES[@]}"; do [[ -s $KARPENTER_CRDS/$(basename "$f") ]] || return 1; done
}
stamp_ok() { [[ ${FORCE_REBUILD:-0} != 1 && -f $STAMP ]] && grep -qxF "$(want_line "$1")" "$STAMP"; }
bins_ok() { local b; for b in "$@"; do [[ -x $BIN/$b ]] || return 1; done; }
part_ok() {  # up to date, or not wanted this time
  [[ $1 == prometheus ]] || wanted "$1" || return 0
  case $1 in
    k8s) stamp_ok k8s && bins_ok "${K8S_BINS[@]}" ;;
    etcd) stamp_ok etcd && bins_ok etcd ;;
    kwok) stamp_ok kwok && bins_ok kwok && [[ -s $STAGES ]] ;;
    karpenter) stamp_ok karpenter && bins_ok karpenter-kwok && karpenter_crds_ok ;;
    helm) stamp_ok helm && bins_ok helm ;;
    prometheus) [[ ${BUILD_PROMETHEUS:-0} != 1 ]] || { stamp_ok prometheus && bins_ok prometheus; } ;;
  esac
}
stamp_drop() {  # forget a part before rebuilding it
  [[ -f $STAMP ]] || return 0
  grep -v "^$1=" "$STAMP" >"$STAMP.tmp" || true
  mv -f "$STAMP.tmp" "$STAMP"
}
stamp_add() { stamp_drop "$1"; want_line "$1" >>"$STAMP"; }

# Fast path: nothing to do, and no Go invocation at all.
if part_ok k8s && part_ok etcd && part_ok kwok && part_ok karpenter && part_ok helm && part_ok prometheus; then
  log "up to date: $(for p in $BUILD_PARTS; do printf '%s ' "$(want_line "$p" | cut -d' ' -f1)"; done)in $BIN"
  echo "$BIN"
  exit 0
fi

mkdir -p "$BIN" "$SRC"
# Serialise concurrent builds into the same cache (e.g. parallel test workers).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$OUT/.build.lock"
  if ! flock -n 9; then
    log "another build-bins.sh holds $OUT/.build.lock; waiting"
    flock 9
  fi
fi

# Hermetic-ish Go environment: module mode, no workspace, static host binaries.
export GO111MODULE=on GOWORK=off CGO_ENABLED=0
GOOS=$("$GO" env GOHOSTOS); GOARCH=$("$GO" env GOHOSTARCH); export GOOS GOARCH
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
log "using $("$GO" version) (GOMODCACHE=$("$GO" env GOMODCACHE), GOCACHE=$("$GO" env GOCACHE), -p $JOBS)"

# Print the JSON field $2 of `go mod download -json $1`.
mod_field() {
  local json
  if ! json=$(cd "$SRC" && GOFLAGS='' "$GO" mod download -json "$1"); then
    printf 'build-bins.sh: go mod download %s failed:\n%s\n' "$1" "$json" >&2
    return 1
  fi
  sed -n "s/^[[:space:]]*\"$2\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" <<<"$json" | head -n1
}

# The command packages named (as blank imports) in a wrapper's tools.go.
tool_pkgs() { sed -n 's/^[[:space:]]*_[[:space:]]*"\([^"]*\)".*/\1/p' "$1"; }

# Resolve and download everything a wrapper module needs, with a clear error.
resolve() {  # <dir> <pkgs...>
  local dir=$1; shift
  (cd "$dir" && "$GO" list -deps -f '{{with .Error}}{{.}}{{end}}' "$@" >/dev/null) \
    || die "could not resolve the module graph in $dir (see go output above)"
}

# A wrapper module requiring one module, whose tools.go names one command package: write
# its go.mod and download what it needs. The package is left in TOOL_PKG.
wrapper_module() {  # <dir> <part> <go directive line> <module> <version>
  local dir=$1 part=$2 go_line=$3 module=$4 version=$5 pkgs
  {
    echo "// Code generated by tests/cluster/build-bins.sh. DO NOT EDIT."
    echo "module spot-extender.local/tests/cluster/$part"
    echo
    echo "$go_line"
    echo
    echo "require $module v$version"
  } >"$dir/go.mod"
  mapfile -t pkgs < <(tool_pkgs "$dir/tools.go")
  [[ ${#pkgs[@]} -eq 1 ]] || die "$part/tools.go should list exactly one package"
  log "downloading modules for $part v$version"
  resolve "$dir" "${pkgs[@]}"
  TOOL_PKG=${pkgs[0]}
}

n=0
build_one() {  # <dir> <output name> <package> <ldflags>
  local dir=$1 name=$2 pkg=$3 ldflags=$4 t0
  n=$((n + 1))
  log "building $name ($n/$TOTAL)"
  t0=$(date +%s)
  rm -f "$BIN/$name"
  (cd "$dir" && "$GO" build -p "$JOBS" -trimpath -ldflags "-s -w $ldflags" -o "$BIN/$name.tmp" "$pkg") \
    || die "go build of $pkg failed"
  mv -f "$BIN/$name.tmp" "$BIN/$name"
  log "built $name in $(( $(date +%s) - t0 ))s ($(du -h "$BIN/$name" | cut -f1))"
}

expect_output() {  # <what> <needle> <cmd...>
  local what=$1 needle=$2 out; shift 2
  out=$("$@" 2>&1) || die "$what: '$*' failed: $out"
  grep -qF -- "$needle" <<<"$out" || die "$what: expected '$needle' in output of '$*', got: $out"
}

# --------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------
# Print the entries of a go.mod directive (single-line and block forms), one per
# line with leading whitespace, the keyword and // comments stripped.
gomod_directive() {  # <require|replace> <go.mod>
  awk -v kw="$1" '
    { sub(/[[:space:]]*\/\/.*$/, "") }
    $0 ~ "^" kw "[[:space:]]*\\(" { blk = 1; next }
    blk && /^[[:space:]]*\)/ { blk = 0; next }
    blk { sub(/^[[:space:]]+/, ""); if ($0 != "") print; next }
    $1 == kw { sub("^" kw "[[:space:]]+", ""); print }' "$2"
}

build_k8s() {
  local dir=$SRC/k8s gomod info staging_ver go_line
  staging_ver="v0.${K8S_VERSION#1.}"   # 1.36.3 -> v0.36.3
  log "resolving k8s.io/kubernetes v$K8S_VERSION"
  gomod=$(mod_field "k8s.io/kubernetes@v$K8S_VERSION" GoMod) \
    || die "cannot fetch k8s.io/kubernetes v$K8S_VERSION from the module proxy (is K8S_VERSION right?)"
  info=$(mod_field "k8s.io/kubernetes@v$K8S_VERSION" Info) || die "cannot read k8s.io/kubernetes v$K8S_VERSION info"
  [[ -f $gomod ]] || die "no go.mod for k8s.io/kubernetes v$K8S_VERSION"

  rm -rf "$dir"; mkdir -p "$dir"
  cp "$HERE/k8s/"*.go "$dir/"

  # Staging modules: required at v0.0.0 and replaced by ./staging/src/... in
  # kubernetes' go.mod. Both lists must agree.
  local required replaced
  required=$(gomod_directive require "$gomod" | awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' | sort -u)
  replaced=$(gomod_directive replace "$gomod" | awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' | sort -u)
  [[ -n $required ]] || die "found no k8s.io/* v0.0.0 requirements in $gomod; the go.mod layout changed"
  local missing
  missing=$(comm -23 <(echo "$required") <(echo "$replaced"))
  [[ -z $missing ]] || die "required at v0.0.0 but not replaced by ./staging in $gomod: $missing"
  # Any other replace in kubernetes' go.mod would be ignored for a dependency;
  # copy module=>module ones and refuse local paths we cannot reproduce.
  local other_replaces
  other_replaces=$(gomod_directive replace "$gomod" | awk '!($3 ~ /^\.\/staging\//)')
  if grep -qE '=>[[:space:]]*\.{0,2}/' <<<"$other_replaces"; then
    die "k8s.io/kubernetes go.mod has local replace directives besides staging: $other_replaces"
  fi
  local -a other_lines=()
  [[ -z $other_replaces ]] || mapfile -t other_lines <<<"$other_replaces"
  go_line=$(grep -m1 -E '^go [0-9]' "$gomod")

  {
    echo "// Code generated by tests/cluster/build-bins.sh from k8s.io/kubernetes v$K8S_VERSION go.mod. DO NOT EDIT."
    echo "module spot-extender.local/tests/cluster/k8s"
    echo
    echo "$go_line"
    awk '/^godebug[[:space:]]*\(/ {blk=1} blk || /^godebug[[:space:]]/ {print} blk && /^\)/ {blk=0}' "$gomod"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    echo "replace ("
    local m
    for m in $required; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_ver"; done
    [[ -z $other_replaces ]] || printf '\t%s\n' "${other_lines[@]}"
    echo ")"
  } >"$dir/go.mod"
  log "generated $dir/go.mod ($(wc -w <<<"$required") staging modules -> $staging_ver)"

  local pkgs
  mapfile -t pkgs < <(tool_pkgs "$dir/tools.go")
  [[ ${#pkgs[@]} -eq ${#K8S_BINS[@]} ]] || die "k8s/tools.go should list ${#K8S_BINS[@]} cmd packages"
  log "downloading modules for Kubernetes (first run: a few hundred MB)"
  resolve "$dir" "${pkgs[@]}"

  local build_date major minor ldflags="" p key val
  build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")
  [[ -n $build_date ]] || build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  major=${K8S_VERSION%%.*}
  minor=${K8S_VERSION#*.}; minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for kv in "gitVersion=v$K8S_VERSION" "gitMajor=$major" "gitMinor=$minor" \
              "gitTreeState=clean" "buildDate=$build_date"; do
      key=${kv%%=*}; val=${kv#*=}
      ldflags+=" -X $p.$key=$val"
    done
  done

  stamp_drop k8s
  local b
  for b in "${K8S_BINS[@]}"; do
    build_one "$dir" "$b" "k8s.io/kubernetes/cmd/$b" "$ldflags"
  done
  expect_output kube-apiserver "Kubernetes v$K8S_VERSION" "$BIN/kube-apiserver" --version
  expect_output kube-controller-manager "Kubernetes v$K8S_VERSION" "$BIN/kube-controller-manager" --version
  expect_output kube-scheduler "Kubernetes v$K8S_VERSION" "$BIN/kube-scheduler" --version
  expect_output kubectl "Client Version: v$K8S_VERSION" "$BIN/kubectl" version --client
  stamp_add k8s
}

# --------------------------------------------------------------------------
# etcd
# --------------------------------------------------------------------------
build_etcd() {
  local dir=$SRC/etcd
  rm -rf "$dir"; mkdir -p "$dir"
  cp "$HERE/etcd/"*.go "$dir/"
  {
    echo "// Code generated by tests/cluster/build-bins.sh. DO NOT EDIT."
    echo "module spot-extender.local/tests/cluster/etcd"
    echo
    echo "go $("$GO" env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"
    echo
    echo "require go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
  } >"$dir/go.mod"
  log "downloading modules for etcd v$ETCD_VERSION"
  resolve "$dir" .
  # etcd prints the API module version; it must match the pin.
  local api_ver
  api_ver=$(cd "$dir" && "$GO" list -m -f '{{.Version}}' go.etcd.io/etcd/api/v3)
  [[ $api_ver == "v$ETCD_VERSION" ]] || die "etcd: go.etcd.io/etcd/api/v3 resolved to $api_ver, expected v$ETCD_VERSION"
  stamp_drop etcd
  build_one "$dir" etcd . "-X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION-gomod"
  expect_output etcd "etcd Version: $ETCD_VERSION" "$BIN/etcd" --version
  stamp_add etcd
}

# --------------------------------------------------------------------------
# KWOK controller and its Stage configs
# --------------------------------------------------------------------------
# Print the resource files of a kustomization dir, recursing into dirs.
kustomize_files() {  # <dir>
  local d=$1 r
  [[ -f $d/kustomization.yaml ]] || die "no kustomization.yaml in $d"
  while IFS= read -r r; do
    [[ -n $r ]] || continue
    if [[ -d $d/$r ]]; then kustomize_files "$(cd "$d/$r" && pwd)"
    elif [[ -f $d/$r ]]; then echo "$d/$r"
    else die "kustomization in $d lists missing resource $r"; fi
  done < <(awk '/^resources:/ {in_r=1; next} in_r && /^[^[:space:]-]/ {in_r=0}
                in_r && /^[[:space:]]*-[[:space:]]/ {sub(/^[[:space:]]*-[[:space:]]*/, ""); sub(/[[:space:]]+$/, ""); print}' \
           "$d/kustomization.yaml")
}

build_kwok() {
  local dir=$SRC/kwok kwok_dir
  rm -rf "$dir"; mkdir -p "$dir"
  cp "$HERE/kwok/"*.go "$dir/"
  wrapper_module "$dir" kwok "go $("$GO" env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')" \
    sigs.k8s.io/kwok "$KWOK_VERSION"

  stamp_drop kwok
  build_one "$dir" kwok "$TOOL_PKG" \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$K8S_VERSION"
  expect_output kwok "$KWOK_VERSION" "$BIN/kwok" --version

  # Stages: the "fast" set = node/fast (Ready at once) + node/heartbeat-with-lease
  # + pod/fast (bound pods Running+Ready, completion, deletion).
  kwok_dir=$(cd "$dir" && "$GO" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  [[ -d $kwok_dir/kustomize/stage/fast ]] || die "kwok v$KWOK_VERSION has no kustomize/stage/fast in $kwok_dir"
  local f files
  files=$(kustomize_files "$kwok_dir/kustomize/stage/fast")
  [[ -n $files ]] || die "no stage files found under $kwok_dir/kustomize/stage/fast"
  {
    echo "# KWOK Stage configs from sigs.k8s.io/kwok@v$KWOK_VERSION kustomize/stage/fast,"
    echo "# collected by tests/cluster/build-bins.sh. Pass to: kwok --config <this file>"
    for f in $files; do
      echo "---"
      echo "# source: ${f#"$kwok_dir"/}"
      sed '/^---[[:space:]]*$/d' "$f"
    done
  } >"$STAGES.tmp"
  grep -q '^kind: Stage' "$STAGES.tmp" || die "collected stage file has no Stage objects"
  mv -f "$STAGES.tmp" "$STAGES"
  log "wrote $STAGES ($(grep -c '^kind: Stage' "$STAGES") stages)"
  stamp_add kwok
}

# --------------------------------------------------------------------------
# Karpenter's KWOK cloud provider and its CRDs
# --------------------------------------------------------------------------
build_karpenter() {
  local dir=$SRC/karpenter gomod go_line kp_dir f
  rm -rf "$dir"; mkdir -p "$dir"
  cp "$HERE/karpenter/"*.go "$dir/"
  # Only this build uses the newer toolchain; the go command fetches it once.
  export GOTOOLCHAIN=$KARPENTER_GOTOOLCHAIN
  log "resolving sigs.k8s.io/karpenter v$KARPENTER_VERSION with GOTOOLCHAIN=$GOTOOLCHAIN (first run fetches the toolchain)"
  gomod=$(mod_field "sigs.k8s.io/karpenter@v$KARPENTER_VERSION" GoMod) \
    || die "cannot fetch sigs.k8s.io/karpenter v$KARPENTER_VERSION (is KARPENTER_VERSION right?)"
  [[ -f $gomod ]] || die "no go.mod for sigs.k8s.io/karpenter v$KARPENTER_VERSION"
  # A replace in karpenter's go.mod would be ignored for a dependency.
  ! grep -qE '^replace' "$gomod" || die "sigs.k8s.io/karpenter v$KARPENTER_VERSION go.mod has replace directives; the wrapper would drop them"
  go_line=$(grep -m1 -E '^go [0-9]' "$gomod")
  wrapper_module "$dir" karpenter "$go_line" sigs.k8s.io/karpenter "$KARPENTER_VERSION"

  stamp_drop karpenter
  build_one "$dir" karpenter-kwok "$TOOL_PKG" ""
  # No --version flag; the module version is in the binary's build info.
  expect_output karpenter-kwok "sigs.k8s.io/karpenter"$'\t'"v$KARPENTER_VERSION" "$GO" version -m "$BIN/karpenter-kwok"

  kp_dir=$(cd "$dir" && "$GO" list -m -f '{{.Dir}}' sigs.k8s.io/karpenter)
  rm -rf "$KARPENTER_CRDS.tmp"; mkdir -p "$KARPENTER_CRDS.tmp"
  for f in "${KARPENTER_CRD_FILES[@]}"; do
    [[ -s $kp_dir/$f ]] || die "karpenter v$KARPENTER_VERSION has no $f"
    cp "$kp_dir/$f" "$KARPENTER_CRDS.tmp/"
  done
  rm -rf "$KARPENTER_CRDS"; mv "$KARPENTER_CRDS.tmp" "$KARPENTER_CRDS"
  chmod -R u+w "$KARPENTER_CRDS"
  log "copied ${#KARPENTER_CRD_FILES[@]} Karpenter CRDs to $KARPENTER_CRDS"
  unset GOTOOLCHAIN
  stamp_add karpenter
}

# --------------------------------------------------------------------------
# Tools built from one module each: helm (chart tests), Prometheus (make dashboard)
# --------------------------------------------------------------------------
# The wrapper module takes the tool module's own go directive; its tools.go names the
# command package. The caller checks the binary and stamps the part.
build_tool() {  # <part> <module> <version> <ldflags>
  local part=$1 module=$2 version=$3 ldflags=$4 dir=$SRC/$1 gomod go_line
  rm -rf "$dir"; mkdir -p "$dir"
  cp "$HERE/$part/"*.go "$dir/"
  gomod=$(mod_field "$module@v$version" GoMod) || die "cannot fetch $module v$version (check versions.env)"
  ! grep -qE '^replace' "$gomod" || die "$module v$version go.mod has replace directives; the wrapper would drop them"
  go_line=$(grep -m1 -E '^go [0-9]' "$gomod")
  wrapper_module "$dir" "$part" "$go_line" "$module" "$version"
  stamp_drop "$part"
  build_one "$dir" "$part" "$TOOL_PKG" "$ldflags"
}

build_helm() {
  build_tool helm helm.sh/helm/v4 "$HELM_VERSION" "-X helm.sh/helm/v4/internal/version.version=v$HELM_VERSION"
  expect_output helm "v$HELM_VERSION" "$BIN/helm" version --short
  stamp_add helm
}

build_prometheus() {
  build_tool prometheus github.com/prometheus/prometheus "$PROMETHEUS_VERSION" ""
  expect_output prometheus "github.com/prometheus/prometheus"$'\t'"v$PROMETHEUS_VERSION" "$GO" version -m "$BIN/prometheus"
  stamp_add prometheus
}

if wanted k8s; then
  if part_ok k8s; then n=$((n + ${#K8S_BINS[@]})); log "Kubernetes v$K8S_VERSION up to date"; else build_k8s; fi
fi
if wanted etcd; then if part_ok etcd; then n=$((n + 1)); log "etcd v$ETCD_VERSION up to date"; else build_etcd; fi; fi
if wanted kwok; then if part_ok kwok; then n=$((n + 1)); log "kwok v$KWOK_VERSION up to date"; else build_kwok; fi; fi
if wanted karpenter; then
  if part_ok karpenter; then n=$((n + 1)); log "karpenter v$KARPENTER_VERSION up to date"; else build_karpenter; fi
fi
if wanted helm; then if part_ok helm; then n=$((n + 1)); log "helm v$HELM_VERSION up to date"; else build_helm; fi; fi
if ! part_ok prometheus; then TOTAL=$((TOTAL + 1)); build_prometheus; fi

log "done: $BUILD_PARTS${BUILD_PROMETHEUS:+ prometheus} in $BIN"
echo "$BIN"
