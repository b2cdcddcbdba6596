#!/usr/bin/env bash
# Checks the documentation: every relative link `](path)` in README.md,
# docs/*.md and bench/README.md must name a file or folder of the repository
# (a `#fragment` is ignored), no link may be an absolute path, no text may name
# a path under /work, /home, /tmp or /root, and the README
# holds no history (issue numbers, "this session", "coming", "planned",
# "will be"). Prints each problem; exits 1 if there is one. DocsTests runs it.
#   bash scripts/check-docs.sh
set -u
cd "$(dirname "$0")/.."
bad=0
for f in README.md docs/*.md bench/README.md; do
  dir=$(dirname "$f")
  # Link targets: the text between "](" and the next ")", code spans excluded.
  while IFS= read -r target; do
    case "$target" in
      http://*|https://*|mailto:*|'#'*) continue;;
      /*) echo "$f: absolute link '$target'"; bad=1; continue;;
    esac
    path=${target%%#*}
    [ -e "$dir/$path" ] || { echo "$f: broken link '$target'"; bad=1; }
  done < <(sed 's/`[^`]*`//g' "$f" | grep -o '](\([^)]*\))' | sed 's/^](//; s/)$//')
done
if grep -n -E '(^|[ `(])/(work|home|tmp|root)/' README.md docs/*.md bench/README.md; then
  echo "the lines above name absolute paths outside the repository"; bad=1
fi
if grep -n -i -E 'issue [0-9]|this session|\bcoming\b|\bplanned\b|will be' README.md; then
  echo "README.md: history or plans (above) do not belong in the front door"; bad=1
fi
[ "$bad" = 0 ] && echo "check-docs: every link resolves"
exit "$bad"
