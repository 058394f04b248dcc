#!/usr/bin/env bash
# Builds policy-example-py (app.py) into a WASI 0.2 component with componentize-py:
#
#   <target>/plugins/python/policy-example-py.wasm   the component
#   <target>/plugins/python/policy-example-py.toml   its manifest (plugin.toml)
#
# <target> is $CARGO_TARGET_DIR (relative to the repository root, as in host/build.rs)
# or target/. Not target/plugins/testing: host/build.rs owns that directory and removes
# what it did not put there. Needs componentize-py:
#
#   python3 -m pip install -r plugins/python/policy-example-py/requirements.txt
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
name="policy-example-py"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in
    /*) ;;
    *) target="$root/$target" ;;
esac
out="$target/plugins/python"

componentize_py="$(command -v componentize-py || true)"
if [ -z "$componentize_py" ]; then
    # pip may have put the script where PATH does not look (e.g. ~/.local/bin).
    scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
    if [ -x "$scripts/componentize-py" ]; then
        componentize_py="$scripts/componentize-py"
    else
        echo "build.sh: componentize-py is not installed; run:" >&2
        echo "  python3 -m pip install -r ${here#"$root"/}/requirements.txt" >&2
        exit 1
    fi
fi
wanted="$(sed -n 's/^componentize-py==//p' "$here/requirements.txt")"
have="$("$componentize_py" --version | awk '{print $2}')"
if [ "$have" != "$wanted" ]; then
    echo "build.sh: warning: componentize-py $have is installed, requirements.txt pins $wanted" >&2
fi

# componentize-py's output differs from build to build (its pre-initialised heap), and
# every new component costs the host a fresh 15-20 s compile: skip the build when nothing
# it depends on changed since the last one.
mkdir -p "$out"
stamp="$(cat "$here"/*.py "$here"/wit/*.wit "$root"/wit/*.wit "$here/build.sh" \
    <(echo "componentize-py $have") | sha256sum | cut -d' ' -f1)"
if [ -f "$out/$name.wasm" ] && [ "$(cat "$out/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    cp "$here/plugin.toml" "$out/$name.toml"
    echo "${out#"$root"/}/$name.wasm is up to date"
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Target the shared contract's `policy-plugin` world, narrowed (-i) to the imports this
# policy uses (wit/imports.wit): componentize-py would otherwise import session-state and
# exec too, which the manifest does not ask for, and the host would refuse the component.
# The Python sources are copied first, so the build leaves no __pycache__ in the tree.
mkdir "$tmp/app"
cp "$here"/*.py "$tmp/app/"
(
    cd "$tmp"
    "$componentize_py" --quiet \
        -d "$root/wit" -d "$here/wit" -w agent:plugin/policy-plugin \
        componentize -i agent:policy-example-py/imports \
        -p "$tmp/app" app -o "$tmp/$name.wasm"
)
# Replace the outputs whole, so a failed build never leaves a half-written component.
mv "$tmp/$name.wasm" "$out/$name.wasm"
cp "$here/plugin.toml" "$out/$name.toml"
echo "$stamp" >"$out/$name.stamp"
echo "built ${out#"$root"/}/$name.wasm ($(du -h "$out/$name.wasm" | cut -f1)) with componentize-py $have"
