#!/usr/bin/env node
// Offline checks of hydra's deploy/ tree: renders every kustomization with
// `kubectl kustomize` and validates what comes out: built-in kinds through
// kubernetes-models, Gateway API kinds through @kubernetes-models/gateway-api,
// Prometheus Operator kinds through @kubernetes-models/prometheus-operator,
// the CRDs in tests/data/k8s-crds (LeaderWorkerSet, MPIJob, InferencePool)
// through their schemas; then cross-references.
//
//   node validate.js                        schemas + cross-references, then the
//                                           negative self-test
//   node validate.js --check-metrics=FILE   every metric that a PromQL expression
//                                           (rules, dashboard, HPA, adapter) names
//                                           is a series in FILE, a /metrics scrape
//   node validate.js --write-prometheusrule regenerate the PrometheusRule from
//                                           deploy/monitoring/hydra.rules.yml
//
// KUBECTL names the kubectl binary (default: kubectl on PATH).
"use strict";

const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const yaml = require("js-yaml");
const Ajv = require("ajv");

const ROOT = path.resolve(__dirname, "..", "..");
const DEPLOY = path.join(ROOT, "deploy");
const CRD_DIR = path.join(ROOT, "tests", "data", "k8s-crds");
const KUBECTL = process.env.KUBECTL || "kubectl";

// What each kustomization must render.
const RENDERS = {
  "k8s/base": ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"],
  "k8s/overlays/leaderworkerset": ["ConfigMap", "HorizontalPodAutoscaler", "LeaderWorkerSet", "PodDisruptionBudget", "Service"],
  "k8s/overlays/mpijob": ["ConfigMap", "MPIJob", "Service"],
  "k8s/overlays/inference-pool": ["ConfigMap", "Deployment", "HTTPRoute", "HorizontalPodAutoscaler", "InferencePool",
    "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"],
  "k8s/gateway": ["Gateway"],
  "k8s/loadtest": ["Job"],
  "monitoring": ["PrometheusRule", "ServiceMonitor"],
};
// The endpoint picker's flags that name a hydra metric (docs/metrics.md).
const EPP_METRIC_FLAGS = ["total-queued-requests-metric", "total-running-requests-metric", "kv-cache-usage-percentage-metric"];
// Secrets the user creates before applying (docs/deployment.md).
const EXTERNAL_SECRETS = new Set(["hydra-mpi-ssh"]);
const RULES_FILE = path.join(DEPLOY, "monitoring", "hydra.rules.yml");
const PROMETHEUS_RULE_FILE = path.join(DEPLOY, "monitoring", "prometheusrule.yaml");
const DASHBOARD_FILE = path.join(DEPLOY, "monitoring", "grafana", "hydra-dashboard.json");
const ADAPTER_FILE = path.join(DEPLOY, "monitoring", "prometheus-adapter-values.yaml");

// ---------------------------------------------------------------------------
// Schemas

// Unknown fields are errors: every object schema that lists its properties
// and does not say x-kubernetes-preserve-unknown-fields gets
// additionalProperties: false (the API server's strict field validation).
function strictify(schema) {
  if (Array.isArray(schema)) return schema.map(strictify);
  if (schema === null || typeof schema !== "object") return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) out[k] = strictify(v);
  if (out.properties && out.additionalProperties === undefined &&
      !out["x-kubernetes-preserve-unknown-fields"]) {
    out.additionalProperties = false;
  }
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const crdValidators = {};  // "group/version Kind" -> validate function
let podSpecValidator = null;
for (const file of fs.readdirSync(CRD_DIR).filter((f) => f.endsWith(".yaml"))) {
  const crd = yaml.load(fs.readFileSync(path.join(CRD_DIR, file), "utf8"));
  for (const version of crd.spec.versions.filter((v) => v.served)) {
    const schema = strictify(version.schema.openAPIV3Schema);
    crdValidators[`${crd.spec.group}/${version.name} ${crd.spec.names.kind}`] = ajv.compile(schema);
    if (crd.spec.names.kind === "LeaderWorkerSet") {
      podSpecValidator = ajv.compile(
        schema.properties.spec.properties.leaderWorkerTemplate.properties.workerTemplate.properties.spec);
    }
  }
}
if (!podSpecValidator) throw new Error(`no LeaderWorkerSet CRD in ${CRD_DIR}`);

function ajvErrors(validate) {
  return validate.errors.slice(0, 5).map((e) =>
    `${e.instancePath || "/"} ${e.message}${e.params && e.params.additionalProperty ? ` '${e.params.additionalProperty}'` : ""}`);
}

// Built-in kinds through kubernetes-models, Prometheus Operator and Gateway
// API kinds through their @kubernetes-models packages; each throws on an
// invalid object.
const MODEL_PACKAGES = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
};
function modelClass(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const candidates = MODEL_PACKAGES[group]
    ? [`${MODEL_PACKAGES[group]}/${group}/${version}/${kind}`]
    : [`kubernetes-models/${group ? `${group}/` : ""}${version}/${kind}`];
  for (const c of candidates) {
    try {
      return require(c)[kind];
    } catch (e) {
      if (e.code !== "MODULE_NOT_FOUND") throw e;
    }
  }
  return null;
}

// Pod templates of an object: [where, template] pairs.
function podTemplates(obj) {
  const s = obj.spec || {};
  switch (obj.kind) {
    case "Deployment": case "StatefulSet": case "DaemonSet": case "Job":
      return [[`${obj.kind}/${obj.metadata.name}`, s.template]];
    case "LeaderWorkerSet": {
      const t = s.leaderWorkerTemplate || {};
      const out = [[`LeaderWorkerSet/${obj.metadata.name} worker`, t.workerTemplate]];
      if (t.leaderTemplate) out.unshift([`LeaderWorkerSet/${obj.metadata.name} leader`, t.leaderTemplate]);
      return out;
    }
    case "MPIJob":
      return Object.entries(s.mpiReplicaSpecs || {}).map(([role, r]) =>
        [`MPIJob/${obj.metadata.name} ${role}`, r.template]);
    default:
      return [];
  }
}

// Schema errors of one object (empty: valid).
function schemaErrors(obj) {
  const where = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
  const errors = [];
  const crd = crdValidators[`${obj.apiVersion} ${obj.kind}`];
  if (crd) {
    if (!crd(obj)) errors.push(...ajvErrors(crd).map((e) => `${where}: ${e}`));
  } else {
    const Cls = modelClass(obj.apiVersion, obj.kind);
    if (!Cls) return [`${where}: no schema for ${obj.apiVersion} ${obj.kind}`];
    try {
      new Cls(obj).validate();
    } catch (e) {
      errors.push(`${where}: ${e.message.split("\n").slice(0, 5).join("; ")}`);
    }
  }
  for (const [tplWhere, tpl] of podTemplates(obj)) {
    if (!tpl || !tpl.spec) { errors.push(`${tplWhere}: no pod template spec`); continue; }
    if (!podSpecValidator(tpl.spec)) {
      errors.push(...ajvErrors(podSpecValidator).map((e) => `${tplWhere} pod spec: ${e}`));
    }
  }
  return errors;
}

// ---------------------------------------------------------------------------
// Cross-references within and across renders

function matches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => (labels || {})[k] === v);
}

// JSON with sorted keys (kustomize sorts a custom resource's keys).
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function imageTag(image) {
  const afterSlash = image.slice(image.lastIndexOf("/") + 1);
  return afterSlash.includes("@") ? afterSlash.split("@")[1]
    : afterSlash.includes(":") ? afterSlash.split(":")[1] : "";
}

function flagValue(flagsText, name) {
  const m = flagsText.match(new RegExp(`^--${name}=(\\S+)$`, "m"));
  return m ? m[1] : null;
}

// Errors of one render's objects taken together.
function crossErrors(objs, renders) {
  const errors = [];
  const byKind = (k) => objs.filter((o) => o.kind === k);
  const names = (k) => new Set(byKind(k).map((o) => o.metadata.name));
  const templates = objs.flatMap(podTemplates);
  const configMaps = names("ConfigMap");
  const flagsMap = byKind("ConfigMap").find((c) => c.metadata.name === "hydra-flags");
  for (const [where, tpl] of templates) {
    const spec = tpl.spec;
    const volumes = new Set((spec.volumes || []).map((v) => v.name));
    for (const v of spec.volumes || []) {
      if (v.configMap && !configMaps.has(v.configMap.name)) errors.push(`${where}: ConfigMap ${v.configMap.name} is not rendered`);
      if (v.secret && !EXTERNAL_SECRETS.has(v.secret.secretName)) errors.push(`${where}: Secret ${v.secret.secretName} is neither rendered nor documented`);
      if (v.persistentVolumeClaim && !names("PersistentVolumeClaim").has(v.persistentVolumeClaim.claimName)) {
        errors.push(`${where}: PVC ${v.persistentVolumeClaim.claimName} is not rendered`);
      }
    }
    for (const c of [...(spec.initContainers || []), ...spec.containers]) {
      for (const m of c.volumeMounts || []) {
        if (!volumes.has(m.name)) errors.push(`${where} ${c.name}: mounts undefined volume ${m.name}`);
      }
      const tag = imageTag(c.image || "");
      if (!tag || tag === "latest") errors.push(`${where} ${c.name}: image ${c.image} needs a pinned tag`);
      if (!c.resources || !c.resources.requests || !c.resources.limits) errors.push(`${where} ${c.name}: no resource requests and limits`);
      // hydra's own containers: its ports, probes and flags.
      if (c.name !== "hydra") continue;
      const ports = new Map((c.ports || []).map((p) => [p.name, p.containerPort]));
      if (ports.get("grpc") !== undefined) {
        // A container that serves gRPC: probes through grpc.health.v1, a
        // grace period that covers preStop + drain.
        for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
          if (!c[probe] || !c[probe].grpc || c[probe].grpc.port !== ports.get("grpc")) {
            errors.push(`${where} ${c.name}: ${probe} must be a grpc probe on port ${ports.get("grpc")}`);
          }
        }
        if (!flagsMap) { errors.push(`${where}: no hydra-flags ConfigMap for --drain_seconds`); continue; }
        const drain = Number(flagValue(flagsMap.data["serve.flags"], "drain_seconds"));
        const cmd = (((c.lifecycle || {}).preStop || {}).exec || {}).command || [];
        const preStop = cmd[0] === "sleep" ? Number(cmd[1]) : NaN;
        const grace = spec.terminationGracePeriodSeconds;
        if (!(drain > 0) || !(preStop >= 0) || !(grace >= preStop + drain + 5)) {
          errors.push(`${where}: terminationGracePeriodSeconds ${grace} must cover preStop ${preStop} s + --drain_seconds ${drain} + 5 s`);
        }
      }
      if (ports.get("metrics") !== undefined && ports.get("metrics") !== Number(flagsMap && flagValue(flagsMap.data["serve.flags"], "metrics_port"))) {
        errors.push(`${where} ${c.name}: metrics port ${ports.get("metrics")} is not --metrics_port`);
      }
      if (ports.get("http") !== undefined && ports.get("http") !== Number(flagsMap && flagValue(flagsMap.data["serve.flags"], "http_port"))) {
        errors.push(`${where} ${c.name}: http port ${ports.get("http")} is not --http_port`);
      }
    }
  }
  for (const svc of byKind("Service")) {
    const hits = templates.filter(([, t]) => matches(svc.spec.selector, t.metadata.labels));
    if (hits.length === 0) errors.push(`Service/${svc.metadata.name}: selector matches no pod template`);
    const isHydra = (svc.metadata.labels || {})["app.kubernetes.io/name"] === "hydra";
    for (const [where, t] of hits) {
      const containerPorts = t.spec.containers.flatMap((c) => c.ports || []);
      if (isHydra && !containerPorts.some((p) => p.name === "grpc")) {
        errors.push(`Service/${svc.metadata.name}: selects ${where}, which serves no grpc port`);
      }
      for (const p of svc.spec.ports) {
        const target = p.targetPort === undefined ? p.port : p.targetPort;
        if (!containerPorts.some((cp) => (typeof target === "string" ? cp.name === target : cp.containerPort === target))) {
          errors.push(`Service/${svc.metadata.name}: port ${p.name} targets ${target}, which ${where} does not declare`);
        }
      }
    }
    const portNames = svc.spec.ports.map((p) => p.name).sort().join(",");
    if (isHydra && portNames !== "grpc,http,metrics") {
      errors.push(`Service/${svc.metadata.name}: ports must be named grpc, http and metrics, not ${portNames}`);
    }
  }
  errors.push(...inferencePoolErrors(objs, templates, flagsMap));
  for (const pdb of byKind("PodDisruptionBudget")) {
    if (!templates.some(([, t]) => matches(pdb.spec.selector.matchLabels, t.metadata.labels))) {
      errors.push(`PodDisruptionBudget/${pdb.metadata.name}: selector matches no pod template`);
    }
  }
  for (const hpa of byKind("HorizontalPodAutoscaler")) {
    const ref = hpa.spec.scaleTargetRef;
    if (!objs.some((o) => o.kind === ref.kind && o.apiVersion === ref.apiVersion && o.metadata.name === ref.name)) {
      errors.push(`HorizontalPodAutoscaler/${hpa.metadata.name}: target ${ref.apiVersion} ${ref.kind}/${ref.name} is not rendered`);
    }
  }
  for (const lws of byKind("LeaderWorkerSet")) {
    if (lws.spec.leaderWorkerTemplate.restartPolicy !== "RecreateGroupOnPodRestart") {
      errors.push(`LeaderWorkerSet/${lws.metadata.name}: restartPolicy must be RecreateGroupOnPodRestart`);
    }
  }
  if (renders) {
    // The same N in both multi-node overlays, the same image tags everywhere.
    const lws = renders["k8s/overlays/leaderworkerset"].find((o) => o.kind === "LeaderWorkerSet");
    const mpi = renders["k8s/overlays/mpijob"].find((o) => o.kind === "MPIJob");
    if (lws && mpi) {
      const n = lws.spec.leaderWorkerTemplate.size;
      const m = mpi.spec.mpiReplicaSpecs.Worker.replicas * (mpi.spec.slotsPerWorker || 1) +
        (mpi.spec.runLauncherAsWorker ? 1 : 0);
      if (n !== m) errors.push(`LeaderWorkerSet size ${n} != MPIJob ranks ${m}`);
    }
    const tags = new Map();
    for (const [name, rendered] of Object.entries(renders)) {
      for (const [, t] of rendered.flatMap(podTemplates)) {
        for (const c of [...(t.spec.initContainers || []), ...t.spec.containers]) {
          const repo = c.image.replace(/[:@].*$/, "");
          if (!tags.has(repo)) tags.set(repo, new Map());
          tags.get(repo).set(name, c.image);
        }
      }
    }
    for (const [repo, seen] of tags) {
      if (new Set(seen.values()).size > 1) errors.push(`image ${repo} differs between renders: ${JSON.stringify(Object.fromEntries(seen))}`);
    }
    // The ServiceMonitor scrapes the Service of every deployment shape.
    const sm = renders.monitoring.find((o) => o.kind === "ServiceMonitor");
    for (const shape of ["k8s/base", "k8s/overlays/leaderworkerset", "k8s/overlays/mpijob", "k8s/overlays/inference-pool"]) {
      const svc = renders[shape].find((o) => o.kind === "Service" && matches(sm.spec.selector.matchLabels, o.metadata.labels));
      if (!svc) { errors.push(`ServiceMonitor/${sm.metadata.name}: selects no Service of ${shape}`); continue; }
      for (const ep of sm.spec.endpoints) {
        if (!svc.spec.ports.some((p) => p.name === ep.port)) errors.push(`ServiceMonitor: ${shape} Service has no port ${ep.port}`);
      }
      if (svc.metadata.labels[sm.spec.jobLabel] !== "hydra") errors.push(`ServiceMonitor: jobLabel ${sm.spec.jobLabel} of ${shape}'s Service is not "hydra"`);
    }
    // Each HTTPRoute's Gateway is one that ships, and takes the route.
    const gateways = Object.values(renders).flat().filter((o) => o.kind === "Gateway");
    for (const route of Object.values(renders).flat().filter((o) => o.kind === "HTTPRoute")) {
      for (const ref of route.spec.parentRefs) {
        if ((ref.kind || "Gateway") !== "Gateway" || ref.namespace) continue;  // elsewhere: the user's
        const gw = gateways.find((g) => g.metadata.name === ref.name);
        if (!gw) { errors.push(`HTTPRoute/${route.metadata.name}: Gateway ${ref.name} is not in deploy/`); continue; }
        const takes = gw.spec.listeners.filter((l) => (!ref.sectionName || l.name === ref.sectionName) &&
          ["HTTP", "HTTPS"].includes(l.protocol) &&
          ["Same", "All"].includes(((l.allowedRoutes || {}).namespaces || {}).from || "Same"));
        if (takes.length === 0) errors.push(`HTTPRoute/${route.metadata.name}: no listener of Gateway ${ref.name} takes it`);
      }
    }
    // The PrometheusRule carries exactly the plain rules file's groups.
    const rule = renders.monitoring.find((o) => o.kind === "PrometheusRule");
    const plain = yaml.load(fs.readFileSync(RULES_FILE, "utf8"));
    if (canonical(rule.spec.groups) !== canonical(plain.groups)) {
      errors.push("PrometheusRule differs from hydra.rules.yml: run node tests/deploy/validate.js --write-prometheusrule");
    }
  }
  return errors;
}

// A container's --NAME=VALUE argument (undefined: not given).
function argValue(container, name) {
  const a = (container.args || []).find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? undefined : a.slice(name.length + 3);
}

// InferencePools, their endpoint pickers and the HTTPRoutes to them.
function inferencePoolErrors(objs, templates, flagsMap) {
  const errors = [];
  const services = objs.filter((o) => o.kind === "Service");
  for (const pool of objs.filter((o) => o.kind === "InferencePool")) {
    const where = `InferencePool/${pool.metadata.name}`;
    const number = pool.spec.targetPorts[0].number;
    const members = templates.filter(([, t]) => matches(pool.spec.selector.matchLabels, t.metadata.labels));
    if (members.length === 0) errors.push(`${where}: selector matches no pod template`);
    for (const [tw, t] of members) {
      const hydra = t.spec.containers.find((c) => c.name === "hydra");
      const port = hydra && (hydra.ports || []).find((p) => p.containerPort === number);
      if (!port || port.name !== "http") errors.push(`${where}: target port ${number} is not the http port of ${tw}'s hydra`);
    }
    const ref = pool.spec.endpointPickerRef;
    if ((ref.kind || "Service") !== "Service" || (ref.group || "") !== "") {
      errors.push(`${where}: endpoint picker ${ref.group}/${ref.kind} is not a core Service`);
      continue;
    }
    // The CRD's CEL rule, which the JSON schema cannot express.
    if (!ref.port) { errors.push(`${where}: endpointPickerRef to a Service needs a port`); continue; }
    const svc = services.find((o) => o.metadata.name === ref.name);
    if (!svc) { errors.push(`${where}: endpoint picker Service ${ref.name} is not rendered`); continue; }
    if (!svc.spec.ports.some((p) => p.port === ref.port.number)) {
      errors.push(`${where}: Service ${ref.name} has no port ${ref.port.number}`);
    }
    // One picker, behind that Service, watching this pool, reading hydra's metrics.
    const pickers = templates.filter(([, t]) => t.spec.containers.some((c) => argValue(c, "pool-name") === pool.metadata.name));
    if (pickers.length !== 1) errors.push(`${where}: ${pickers.length} endpoint pickers watch it, want 1`);
    for (const [pw, t] of pickers) {
      if (!matches(svc.spec.selector, t.metadata.labels)) errors.push(`${where}: Service ${ref.name} does not select ${pw}`);
      const c = t.spec.containers.find((x) => argValue(x, "pool-name") === pool.metadata.name);
      const grpcPort = Number(argValue(c, "grpc-port") || 9002);
      const svcPort = svc.spec.ports.find((p) => p.port === ref.port.number);
      const target = svcPort && (svcPort.targetPort === undefined ? svcPort.port : svcPort.targetPort);
      const targetNumber = typeof target === "string" ? ((c.ports || []).find((p) => p.name === target) || {}).containerPort : target;
      if (targetNumber !== grpcPort) errors.push(`${where}: Service ${ref.name}:${ref.port.number} reaches ${target}, not the picker's --grpc-port ${grpcPort}`);
      const metricsPort = Number(flagsMap && flagValue(flagsMap.data["serve.flags"], "metrics_port"));
      if (Number(argValue(c, "model-server-metrics-port")) !== metricsPort) {
        errors.push(`${pw} ${c.name}: --model-server-metrics-port must be hydra's --metrics_port ${metricsPort}`);
      }
      for (const flag of EPP_METRIC_FLAGS) {
        if (!/^hydra_[a-z_]+$/.test(argValue(c, flag) || "")) errors.push(`${pw} ${c.name}: --${flag} must name a hydra metric`);
      }
    }
  }
  for (const route of objs.filter((o) => o.kind === "HTTPRoute")) {
    for (const rule of route.spec.rules || []) {
      for (const b of rule.backendRefs || []) {
        const kind = b.kind || "Service";
        const group = b.group || "";
        if (!objs.some((o) => o.kind === kind && o.metadata.name === b.name &&
          (o.apiVersion.includes("/") ? o.apiVersion.split("/")[0] : "") === group)) {
          errors.push(`HTTPRoute/${route.metadata.name}: backend ${group}/${kind} ${b.name} is not rendered`);
        }
      }
    }
  }
  return errors;
}

// ---------------------------------------------------------------------------

function render(dir) {
  const out = execFileSync(KUBECTL, ["kustomize", path.join(DEPLOY, dir)], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return yaml.loadAll(out).filter((o) => o);
}

function renderAll() {
  const renders = {};
  for (const dir of Object.keys(RENDERS)) renders[dir] = render(dir);
  return renders;
}

function checkAll(renders) {
  const errors = [];
  for (const [dir, objs] of Object.entries(renders)) {
    const kinds = [...new Set(objs.map((o) => o.kind))].sort();
    if (kinds.join() !== RENDERS[dir].join()) errors.push(`${dir}: renders ${kinds.join(", ")}, want ${RENDERS[dir].join(", ")}`);
    for (const o of objs) errors.push(...schemaErrors(o).map((e) => `${dir}: ${e}`));
    errors.push(...crossErrors(objs).map((e) => `${dir}: ${e}`));
  }
  errors.push(...crossErrors([], renders));
  return errors;
}

// Each mutation breaks one rendered object; the checks must notice every one.
function selfTest(renders) {
  const find = (dir, kind) => renders[dir].find((o) => o.kind === kind);
  const clone = (o) => JSON.parse(JSON.stringify(o));
  const cases = [
    ["Deployment replicas as a string (kubernetes-models)", () => {
      const o = clone(find("k8s/base", "Deployment")); o.spec.replicas = "two"; return schemaErrors(o);
    }],
    ["misspelled container field readinesProbe (strict pod spec)", () => {
      const o = clone(find("k8s/base", "Deployment"));
      const c = o.spec.template.spec.containers[0]; c.readinesProbe = c.readinessProbe; delete c.readinessProbe;
      return schemaErrors(o);
    }],
    ["grpc probe port as an object (strict pod spec)", () => {
      const o = clone(find("k8s/loadtest", "Job"));
      o.spec.template.spec.containers[0].livenessProbe = { grpc: { port: { number: 1 } } };
      return schemaErrors(o);
    }],
    ["Service port as text (kubernetes-models)", () => {
      const o = clone(find("k8s/base", "Service")); o.spec.ports[0].port = "grpc"; return schemaErrors(o);
    }],
    ["LeaderWorkerSet restartPolicy not in the CRD's enum", () => {
      const o = clone(find("k8s/overlays/leaderworkerset", "LeaderWorkerSet"));
      o.spec.leaderWorkerTemplate.restartPolicy = "Sometimes"; return schemaErrors(o);
    }],
    ["LeaderWorkerSet unknown spec field (CRD, strict)", () => {
      const o = clone(find("k8s/overlays/leaderworkerset", "LeaderWorkerSet"));
      o.spec.groupSize = 2; return schemaErrors(o);
    }],
    ["LeaderWorkerSet leader container without a name (CRD)", () => {
      const o = clone(find("k8s/overlays/leaderworkerset", "LeaderWorkerSet"));
      delete o.spec.leaderWorkerTemplate.leaderTemplate.spec.containers[0].name; return schemaErrors(o);
    }],
    ["MPIJob slotsPerWorker as text (CRD)", () => {
      const o = clone(find("k8s/overlays/mpijob", "MPIJob")); o.spec.slotsPerWorker = "one"; return schemaErrors(o);
    }],
    ["ServiceMonitor endpoints as an object (prometheus-operator models)", () => {
      const o = clone(find("monitoring", "ServiceMonitor")); o.spec.endpoints = { port: "metrics" }; return schemaErrors(o);
    }],
    ["Service selecting no pod", () => {
      const objs = clone(renders["k8s/base"]);
      objs.find((o) => o.kind === "Service").spec.selector["app.kubernetes.io/component"] = "nothing";
      return crossErrors(objs);
    }],
    ["grace period shorter than preStop + drain", () => {
      const objs = clone(renders["k8s/base"]);
      objs.find((o) => o.kind === "Deployment").spec.template.spec.terminationGracePeriodSeconds = 30;
      return crossErrors(objs);
    }],
    ["ConfigMap name typo in a volume", () => {
      const objs = clone(renders["k8s/overlays/leaderworkerset"]);
      objs.find((o) => o.kind === "LeaderWorkerSet").spec.leaderWorkerTemplate.workerTemplate.spec.volumes
        .find((v) => v.configMap).configMap.name = "hydra-flag";
      return crossErrors(objs);
    }],
    ["InferencePool target port as text (CRD)", () => {
      const o = clone(find("k8s/overlays/inference-pool", "InferencePool")); o.spec.targetPorts[0].number = "http";
      return schemaErrors(o);
    }],
    ["InferencePool with the pre-v1 extensionRef (CRD, strict)", () => {
      const o = clone(find("k8s/overlays/inference-pool", "InferencePool"));
      o.spec.extensionRef = o.spec.endpointPickerRef; delete o.spec.endpointPickerRef; return schemaErrors(o);
    }],
    ["InferencePool failureMode not in the CRD's enum", () => {
      const o = clone(find("k8s/overlays/inference-pool", "InferencePool"));
      o.spec.endpointPickerRef.failureMode = "FailSometimes"; return schemaErrors(o);
    }],
    ["HTTPRoute backendRefs as an object (gateway-api models)", () => {
      const o = clone(find("k8s/overlays/inference-pool", "HTTPRoute"));
      o.spec.rules[0].backendRefs = o.spec.rules[0].backendRefs[0]; return schemaErrors(o);
    }],
    ["InferencePool on the gRPC port", () => {
      const objs = clone(renders["k8s/overlays/inference-pool"]);
      objs.find((o) => o.kind === "InferencePool").spec.targetPorts[0].number = 50051;
      return crossErrors(objs);
    }],
    ["InferencePool selecting no pod", () => {
      const objs = clone(renders["k8s/overlays/inference-pool"]);
      objs.find((o) => o.kind === "InferencePool").spec.selector.matchLabels["app.kubernetes.io/component"] = "leader";
      return crossErrors(objs);
    }],
    ["endpoint picker Service name typo", () => {
      const objs = clone(renders["k8s/overlays/inference-pool"]);
      objs.find((o) => o.kind === "InferencePool").spec.endpointPickerRef.name = "hydra-ep";
      return crossErrors(objs);
    }],
    ["endpoint picker scraping the HTTP port for metrics", () => {
      const objs = clone(renders["k8s/overlays/inference-pool"]);
      const c = objs.find((o) => o.kind === "Deployment" && o.metadata.name === "hydra-epp").spec.template.spec.containers[0];
      c.args = c.args.map((a) => a.replace(/^--model-server-metrics-port=.*/, "--model-server-metrics-port=8000"));
      return crossErrors(objs);
    }],
    ["endpoint picker reading vLLM's queue metric", () => {
      const objs = clone(renders["k8s/overlays/inference-pool"]);
      const c = objs.find((o) => o.kind === "Deployment" && o.metadata.name === "hydra-epp").spec.template.spec.containers[0];
      c.args = c.args.filter((a) => !a.startsWith("--total-queued-requests-metric="));
      return crossErrors(objs);
    }],
    ["HTTPRoute to an InferencePool that is not rendered", () => {
      const objs = clone(renders["k8s/overlays/inference-pool"]);
      objs.find((o) => o.kind === "HTTPRoute").spec.rules[0].backendRefs[0].name = "hydra-pool";
      return crossErrors(objs);
    }],
    ["Service targeting a port the pods do not declare", () => {
      const objs = clone(renders["k8s/base"]);
      objs.find((o) => o.kind === "Service").spec.ports.find((p) => p.name === "http").targetPort = "https";
      return crossErrors(objs);
    }],
    ["http container port other than --http_port", () => {
      const objs = clone(renders["k8s/base"]);
      objs.find((o) => o.kind === "Deployment").spec.template.spec.containers[0].ports
        .find((p) => p.name === "http").containerPort = 8080;
      return crossErrors(objs);
    }],
    ["HTTPRoute to a Gateway that does not ship", () => {
      const r = clone(renders);
      r["k8s/overlays/inference-pool"].find((o) => o.kind === "HTTPRoute").spec.parentRefs[0].name = "gateway";
      return crossErrors([], r).filter((e) => e.startsWith("HTTPRoute"));
    }],
    ["unpinned image", () => {
      const objs = clone(renders["k8s/loadtest"]);
      objs[0].spec.template.spec.containers[0].image = "hydra:latest";
      return crossErrors(objs);
    }],
  ];
  const errors = [];
  for (const [what, run] of cases) {
    const found = run();
    if (found.length === 0) errors.push(`self-test: the checks accept a broken object: ${what}`);
    else console.log(`ok: rejects ${what}: ${found[0]}`);
  }
  return errors;
}

// ---------------------------------------------------------------------------
// PromQL metric names

const PROMQL_FUNCTIONS = new Set(`sum min max avg group stddev stdvar count count_values bottomk topk
  quantile limitk limit_ratio histogram_quantile histogram_count histogram_sum histogram_fraction
  histogram_avg histogram_stddev histogram_stdvar rate irate increase delta idelta deriv predict_linear
  abs absent absent_over_time ceil floor round clamp clamp_min clamp_max changes resets label_replace
  label_join vector scalar time timestamp sort sort_desc sort_by_label sort_by_label_desc sqrt exp ln
  log2 log10 sgn avg_over_time min_over_time max_over_time sum_over_time count_over_time
  quantile_over_time stddev_over_time stdvar_over_time last_over_time present_over_time
  mad_over_time holt_winters double_exponential_smoothing day_of_week day_of_month day_of_year
  days_in_month hour minute month year acos acosh asin asinh atan atanh cos cosh sin sinh tan tanh
  deg rad pi`.split(/\s+/));
const PROMQL_KEYWORDS = new Set("and or unless bool by without on ignoring group_left group_right offset inf nan atan2".split(" "));
// Series Prometheus makes itself.
const PROMETHEUS_SERIES = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"]);

// Metric names an expression selects (throws on an unknown function).
function promqlMetrics(expr) {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')  // strings
    .replace(/\{[^}]*\}/g, " ")                                      // label matchers
    .replace(/\[[^\]]*\]/g, " ")                                     // ranges, subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\$\{?\w+\}?/g, " ")                                    // Grafana variables
    .replace(/\boffset\s+-?[\dsmhdwy]+/g, " ")
    .replace(/(^|[^\w.])\d+(\.\d+)?([eE][+-]?\d+)?/g, "$1 ");        // numbers
  const names = [];
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const id = m[0];
    if (/^\s*\(/.test(s.slice(m.index + id.length))) {
      if (!PROMQL_FUNCTIONS.has(id)) throw new Error(`unknown PromQL function ${id} in: ${expr}`);
      continue;
    }
    if (PROMQL_KEYWORDS.has(id)) continue;
    names.push(id);
  }
  return names;
}

// [where, PromQL expression] of every query hydra's deploy/ tree ships.
function shippedQueries(renders) {
  const out = [];
  const rules = yaml.load(fs.readFileSync(RULES_FILE, "utf8"));
  for (const g of rules.groups) for (const r of g.rules) out.push([`rule ${r.alert || r.record}`, String(r.expr)]);
  const dash = JSON.parse(fs.readFileSync(DASHBOARD_FILE, "utf8"));
  for (const p of dash.panels) for (const t of p.targets || []) out.push([`panel "${p.title}" ${t.refId}`, t.expr]);
  for (const v of dash.templating.list) if (v.type === "query") out.push([`variable ${v.name}`, v.definition.replace(/^label_values\((.*),\s*\w+\)$/, "$1")]);
  for (const hpa of Object.values(renders).flat().filter((o) => o.kind === "HorizontalPodAutoscaler")) {
    for (const m of hpa.spec.metrics) if (m.pods) out.push([`HPA metric ${m.pods.metric.name}`, m.pods.metric.name]);
  }
  for (const o of Object.values(renders).flat().filter((x) => x.kind === "Deployment")) {
    for (const c of o.spec.template.spec.containers) {
      for (const flag of EPP_METRIC_FLAGS) {
        const v = argValue(c, flag);
        if (v !== undefined) out.push([`${o.metadata.name} --${flag}`, v]);
      }
    }
  }
  const adapter = yaml.load(fs.readFileSync(ADAPTER_FILE, "utf8"));
  for (const r of adapter.rules.custom) out.push([`prometheus-adapter ${r.name.as}`, r.seriesQuery]);
  return out;
}

// Dashboard panels the deployment doc promises, by the series they need.
const REQUIRED_PANELS = {
  "TTFT p50/p95/p99": ["hydra_time_to_first_token_seconds_bucket"],
  "inter-token latency p50/p95/p99": ["hydra_inter_token_latency_seconds_bucket"],
  "end-to-end latency p50/p95/p99": ["hydra_e2e_request_latency_seconds_bucket"],
  "token throughput": ["hydra_generation_tokens_total", "hydra_prompt_tokens_total"],
  "running and waiting": ["hydra_requests_running", "hydra_requests_waiting"],
  "KV usage": ["hydra_kv_cache_usage_ratio"],
  "KV bytes per rank": ["hydra_kv_cache_bytes"],
  "prefix-cache hit rate": ["hydra_prefix_cache_hits_total", "hydra_prefix_cache_queries_total"],
  "preemptions": ["hydra_preemptions_total"],
  "step time": ["hydra_step_duration_seconds_bucket"],
  "collective time": ["hydra_collective_seconds_bucket"],
  "decode step time p50/p95/p99 vs budget": ["hydra_decode_step_duration_seconds_bucket", "hydra_step_budget_seconds"],
  "prefill and decode tokens per step": ["hydra_step_tokens_sum"],
  "partial prefills and priorities": ["hydra_partial_prefills", "hydra_requests_waiting_by_priority"],
  "KV tier hit rate": ["hydra_kv_tier_hits_total", "hydra_kv_tier_misses_total"],
  "KV tier bytes": ["hydra_kv_tier_bytes", "hydra_kv_tier_capacity_bytes"],
  "speculative acceptance": ["hydra_spec_accepted_tokens_total", "hydra_spec_proposed_tokens_total"],
};

function checkMetrics(renders, scrapeFile) {
  const exported = new Set();
  for (const line of fs.readFileSync(scrapeFile, "utf8").split("\n")) {
    const m = line.match(/^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/);
    if (m) exported.add(m[1]);
  }
  const hydraSeries = [...exported].filter((n) => n.startsWith("hydra_"));
  if (hydraSeries.length < 20) return [`${scrapeFile}: only ${hydraSeries.length} hydra_ series; is it a hydra /metrics scrape?`];
  const errors = [];
  const used = new Set();
  for (const [where, expr] of shippedQueries(renders)) {
    let names;
    try { names = promqlMetrics(expr); } catch (e) { errors.push(`${where}: ${e.message}`); continue; }
    if (names.length === 0) errors.push(`${where}: names no metric: ${expr}`);
    for (const n of names) {
      used.add(n);
      if (!exported.has(n) && !PROMETHEUS_SERIES.has(n)) errors.push(`${where}: ${n} is not exported by hydra serve`);
    }
  }
  // The panels the issue asks for, each with its percentiles where it has them.
  const dash = JSON.parse(fs.readFileSync(DASHBOARD_FILE, "utf8"));
  const panelExprs = dash.panels.map((p) => (p.targets || []).map((t) => t.expr));
  for (const [panel, series] of Object.entries(REQUIRED_PANELS)) {
    const hit = panelExprs.find((exprs) => series.every((s) => exprs.some((e) => e.includes(s))));
    if (!hit) { errors.push(`dashboard: no panel for ${panel} (${series.join(", ")})`); continue; }
    if (panel.includes("p50/p95/p99")) {
      for (const q of ["0.5", "0.95", "0.99"]) {
        if (!hit.some((e) => e.startsWith(`histogram_quantile(${q},`))) errors.push(`dashboard: ${panel} lacks quantile ${q}`);
      }
    }
  }
  for (const p of dash.panels.filter((p) => p.type !== "row")) {
    if (!p.datasource || p.datasource.uid !== "${datasource}") errors.push(`dashboard: panel "${p.title}" does not use the \${datasource} variable`);
  }
  if (!dash.templating.list.some((v) => v.name === "datasource" && v.type === "datasource" && v.query === "prometheus")) {
    errors.push("dashboard: no Prometheus datasource variable");
  }
  console.log(`metric names checked: ${[...used].sort().join(", ")}`);
  return errors;
}

// Negative check of the metric-name check: made-up and misspelt names fail.
function metricsSelfTest(scrapeFile) {
  const exported = fs.readFileSync(scrapeFile, "utf8");
  const errors = [];
  for (const expr of ["rate(hydra_time_to_first_token_bucket[5m])", "sum(hydra_requests_queued)",
    "histogram_quantile(0.9, rate(hydra_step_duration_seconds[5m]))"]) {
    const bad = promqlMetrics(expr).filter((n) => !new RegExp(`^${n}[{ ]`, "m").test(exported));
    if (bad.length === 0) errors.push(`self-test: ${expr} passes the metric-name check`);
    else console.log(`ok: rejects ${expr}: ${bad.join(", ")} not exported`);
  }
  return errors;
}

function writePrometheusRule() {
  const plain = yaml.load(fs.readFileSync(RULES_FILE, "utf8"));
  const rule = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: { name: "hydra", labels: { "app.kubernetes.io/name": "hydra" } },
    spec: { groups: plain.groups },
  };
  const header = "# Generated from hydra.rules.yml by `node tests/deploy/validate.js\n" +
    "# --write-prometheusrule`: edit that file, then regenerate this one.\n";
  fs.writeFileSync(PROMETHEUS_RULE_FILE, header + "---\n" + yaml.dump(rule, { lineWidth: 100, noRefs: true }));
  console.log(`wrote ${path.relative(ROOT, PROMETHEUS_RULE_FILE)}`);
}

function main() {
  const args = process.argv.slice(2);
  if (args.includes("--write-prometheusrule")) { writePrometheusRule(); return 0; }
  const metricsArg = args.find((a) => a.startsWith("--check-metrics="));
  const renders = renderAll();
  let errors;
  if (metricsArg) {
    const file = metricsArg.split("=")[1];
    errors = [...checkMetrics(renders, file), ...metricsSelfTest(file)];
  } else {
    for (const [dir, objs] of Object.entries(renders)) {
      console.log(`rendered deploy/${dir}: ${objs.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`);
    }
    errors = checkAll(renders);
    if (errors.length === 0) console.log("ok: every rendered object validates; cross-references hold");
    errors.push(...selfTest(renders));
  }
  for (const e of errors) console.error(`FAIL: ${e}`);
  return errors.length === 0 ? 0 : 1;
}

process.exitCode = main();
