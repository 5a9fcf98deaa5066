# Sourced by the infra scripts: pinned Python tools, each in its own project-local venv.
ensure_venv() { # dir requirements-file
  local dir="$1" req="$2"
  if [ ! -x "$dir/bin/python" ] || ! cmp -s "$req" "$dir/.switchyard-requirements"; then
    echo "== installing $(basename "$req") into $dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$dir/.switchyard-requirements"
  fi
}
