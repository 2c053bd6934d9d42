// Validates rendered Kubernetes objects against their schemas: the built-in kinds with the npm
// package kubernetes-models (Kubernetes' OpenAPI schemas), the Prometheus Operator's with
// @kubernetes-models/prometheus-operator (its CRDs' schemas). A kind neither package knows is an
// error, so nothing goes unvalidated.
//
//   node .ci/validate-k8s.mjs FILE.yaml...      (multi-document YAML, as helm template and
//                                                kubectl kustomize write it)
//
// Note: these schemas, like the API server's, do not refuse unknown fields; HelmRenderTest and
// the values schema cover the fields the chart writes.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const tools = path.resolve(process.env.EGRET_NPM_TOOLS ?? ".tools/npm");
const require = createRequire(path.join(tools, "package.json"));
const YAML = require("yaml");

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const pkg = group === "monitoring.coreos.com" ? "@kubernetes-models/prometheus-operator" : "kubernetes-models";
  const sub = group ? `${group}/${version}` : version;
  // The ES module of the group/version, by file: the prometheus-operator package only exports
  // ES modules, which require.resolve cannot see.
  const dir = path.join(tools, "node_modules", pkg, sub);
  const file = ["index.mjs", "index.js"].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  if (!file) throw new Error(`${pkg} has no models for ${apiVersion}`);
  const mod = await import(pathToFileURL(file).href);
  const model = mod[kind];
  if (typeof model !== "function") throw new Error(`${pkg} has no model for ${apiVersion} ${kind}`);
  return model;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: validate-k8s.mjs FILE.yaml...");
  process.exit(2);
}
let failed = 0;
for (const file of files) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  const kinds = [];
  for (const doc of docs) {
    if (doc.errors.length) {
      console.error(`${file}: YAML error: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (!obj) continue;
    const what = `${file}: ${obj.kind}/${obj.metadata?.name}`;
    try {
      const Model = await modelFor(obj.apiVersion, obj.kind);
      new Model(obj).validate();
      kinds.push(obj.kind);
    } catch (e) {
      console.error(`${what}: ${e.message}`);
      failed++;
    }
  }
  if (kinds.length === 0) {
    console.error(`${file}: no Kubernetes objects`);
    failed++;
  } else {
    console.log(`${path.basename(file)}: ${kinds.length} objects valid (${[...new Set(kinds)].sort().join(", ")})`);
  }
}
process.exit(failed ? 1 : 0);
