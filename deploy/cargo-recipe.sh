#!/usr/bin/env bash
# Writes the dependency "recipe" of the workspace to DEST (what cargo-chef's `prepare` does): Cargo.lock,
# every Cargo.toml, and a stub for each target that cargo requires to exist when it loads the workspace
# (libs, bins, build scripts, explicitly declared tests, benches and examples). Building the recipe
# compiles exactly the dependencies, so deploy/Dockerfile caches that layer until a manifest or
# Cargo.lock changes; adding a source or an auto-discovered test file does not invalidate it.
# Run from the workspace root.
set -euo pipefail
dest=${1:?usage: cargo-recipe.sh DEST}
mkdir -p "$dest"
cp Cargo.lock "$dest/"
stub() { mkdir -p "$(dirname "$dest/$1")"; printf '%s\n' "$2" > "$dest/$1"; }

# "KIND NAME PATH" for every [[bin]], [[test]], [[bench]] and [[example]] of a manifest (PATH may be -).
declared_targets() {
    awk '
        function flush() { if (kind != "") print kind, (name == "" ? "-" : name), (path == "" ? "-" : path) }
        /^\[\[(bin|test|bench|example)\]\]/ { flush(); kind = $0; gsub(/[][]/, "", kind); name = ""; path = ""; next }
        /^\[/ { flush(); kind = ""; next }
        kind != "" && /^name *=/ { name = $0; sub(/^name *= *"/, "", name); sub(/".*/, "", name) }
        kind != "" && /^path *=/ { path = $0; sub(/^path *= *"/, "", path); sub(/".*/, "", path) }
        END { flush() }
    ' "$1"
}

find . -name Cargo.toml -not -path './target*' -not -path '*/target/*' -not -path './.git/*' -printf '%P\n' \
| sort | while read -r manifest; do
    dir=$(dirname "$manifest")
    mkdir -p "$dest/$dir"
    cp "$manifest" "$dest/$manifest"
    grep -q '^\[package\]' "$manifest" || continue
    prefix=""; [ "$dir" = . ] || prefix="$dir/"
    [ ! -e "${prefix}src/lib.rs" ] || stub "${prefix}src/lib.rs" ''
    for f in "${prefix}src/main.rs" "${prefix}build.rs" "${prefix}"src/bin/*.rs "${prefix}"src/bin/*/main.rs; do
        [ ! -e "$f" ] || stub "$f" 'fn main() {}'
    done
    declared_targets "$manifest" | while read -r kind name path; do
        case $kind in bin) d=src/bin ;; test) d=tests ;; bench) d=benches ;; *) d=examples ;; esac
        for f in "$path" "$d/$name.rs" "$d/$name/main.rs"; do
            if [ "$f" != - ] && [ -e "$prefix$f" ]; then
                [ "$prefix$f" = "${prefix}src/lib.rs" ] || stub "$prefix$f" 'fn main() {}'
                break
            fi
        done
    done
done
