#!/usr/bin/env bash
# Fails when an #include runs upward through kith's layers (docs/architecture.md):
#   base <- crypto <- protocol <- store <- node <- web <- cli
# A file may include its own layer and the layers below it. node/uv/ (KJ on libuv) includes
# nothing of kith's but node/uv/ itself. Generated schema headers belong to the layer that
# compiles them: specs/entry.capnp.h to protocol/, specs/rpc.capnp.h and specs/relay.capnp.h to node/.
set -euo pipefail
cd "$(dirname "$0")/.."

layers=(base crypto protocol store node web cli)
rank() {
  local i
  for i in "${!layers[@]}"; do
    if [ "${layers[$i]}" = "$1" ]; then echo "$i"; return; fi
  done
  echo -1
}

bad=0
for layer in "${layers[@]}"; do
  [ -d "$layer" ] || continue
  mine=$(rank "$layer")
  while IFS= read -r line; do
    file=${line%%:*}
    rest=${line#*:}
    lineno=${rest%%:*}
    target=$(printf '%s' "$rest" | sed -n 's/^[0-9]*:[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p')
    [ -n "$target" ] || continue
    case "$target" in
      specs/entry.capnp.h) top=protocol ;;
      specs/rpc.capnp.h | specs/relay.capnp.h) top=node ;;
      */*) top=${target%%/*} ;;
      *) continue ;;  # a sibling header without a folder
    esac
    theirs=$(rank "$top")
    [ "$theirs" -ge 0 ] || continue  # a system or library header
    if [ "$theirs" -gt "$mine" ]; then
      echo "check-layers: $file:$lineno includes $target: $layer/ may not include the higher layer $top/"
      bad=1
    fi
    if [[ "$file" == node/uv/* && "$target" != node/uv/* ]]; then
      echo "check-layers: $file:$lineno includes $target: node/uv/ includes nothing of kith's but itself"
      bad=1
    fi
  done < <(grep -rn --include='*.h' --include='*.cpp' --include='*.c' '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$layer" || true)
done
if [ "$bad" -ne 0 ]; then
  echo "check-layers: includes run upward through the layers; move the code down or the include up" >&2
  exit 1
fi
echo "check-layers: every include runs downward (${layers[*]})"
