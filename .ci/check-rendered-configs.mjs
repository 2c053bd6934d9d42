// Runs `egret check` on the config file of every rendered chart scenario, with the files that
// the pod would really mount: each PEM file or ${file:...} the config names must be provided by a
// volume the Egret container mounts (a ConfigMap key, or a listed item of a Secret, ConfigMap or
// projected source). Those files are generated (a CA, a client certificate and its key) into a
// scratch root and the config's paths are mapped into it, so `egret check` reads real files.
//
//   node .ci/check-rendered-configs.mjs RENDERED_DIR OUT_DIR java-argv-up-to-and-including-the-jar...
//
// Exits 1 naming every file that no mount provides, or any config `egret check` refuses.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.resolve(process.env.EGRET_NPM_TOOLS ?? ".tools/npm", "package.json"));
const YAML = require("yaml");

const [renderedDir, outDir, ...java] = process.argv.slice(2);
if (!renderedDir || !outDir || java.length === 0) {
  console.error("usage: check-rendered-configs.mjs RENDERED_DIR OUT_DIR JAVA_ARGV... (ending in the jar)");
  process.exit(2);
}

function pems(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const ssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  if (!fs.existsSync(path.join(dir, "leaf.pem"))) {
    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
      "-out", "ca.pem", "-days", "30", "-subj", "/CN=egret-ci CA",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
    ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key",
      "-out", "leaf.csr", "-subj", "/CN=egret-ci client");
    fs.writeFileSync(path.join(dir, "leaf.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
    ssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
      "-out", "leaf.pem", "-days", "30", "-extfile", "leaf.ext");
  }
  return {
    trust: fs.readFileSync(path.join(dir, "ca.pem")),
    cert: fs.readFileSync(path.join(dir, "leaf.pem")),
    key: fs.readFileSync(path.join(dir, "leaf.key")),
    text: Buffer.from("a value from a mounted file\n"),
    // A token hash as a Secret holds it: the hash of a token made from the file's path, since
    // egret check refuses one token for two clients.
    token: (p) => Buffer.from("sha256:" + createHash("sha256").update("egret-ci token " + p)
      .digest("hex") + "\n"),
  };
}

// The files a config names, with what each must hold.
function referencedFiles(config, text) {
  const refs = [];
  const add = (p, kind, where) => { if (typeof p === "string" && p !== "system") refs.push({ path: p, kind, where }); };
  (config?.tls?.trust ?? []).forEach((p, i) => add(p, "trust", `tls.trust[${i}]`));
  (config?.allow ?? []).forEach((rule, i) => {
    (rule?.trust ?? []).forEach((p, j) => add(p, "trust", `allow[${i}].trust[${j}]`));
    if (rule?.clientCert) {
      add(rule.clientCert.cert, "cert", `allow[${i}].clientCert.cert`);
      add(rule.clientCert.key, "key", `allow[${i}].clientCert.key`);
    }
  });
  // Gateway mode: the proxy port's own certificate and client CAs, upstream proxies' CAs, and
  // the clients' token hashes (a file holding "sha256:" + 64 hex).
  const proxyTls = config?.listen?.proxyTls;
  if (proxyTls) {
    add(proxyTls.cert, "cert", "listen.proxyTls.cert");
    add(proxyTls.key, "key", "listen.proxyTls.key");
    (proxyTls.clientCa ?? []).forEach((p, i) => add(p, "trust", `listen.proxyTls.clientCa[${i}]`));
  }
  for (const [name, proxy] of Object.entries(config?.upstreamProxies ?? {})) {
    (proxy?.trust ?? []).forEach((p, i) => add(p, "trust", `upstreamProxies.${name}.trust[${i}]`));
  }
  (config?.clients ?? []).forEach((client, i) => {
    (client?.match?.tokens ?? []).forEach((t, j) => {
      const m = /^\$\{file:([^}]+)\}$/.exec(String(t));
      if (m) add(m[1], "token", `clients[${i}].match.tokens[${j}]`);
    });
    (client?.allow ?? []).forEach((rule, j) => {
      (rule?.trust ?? []).forEach((p, k) => add(p, "trust", `clients[${i}].allow[${j}].trust[${k}]`));
      if (rule?.clientCert) {
        add(rule.clientCert.cert, "cert", `clients[${i}].allow[${j}].clientCert.cert`);
        add(rule.clientCert.key, "key", `clients[${i}].allow[${j}].clientCert.key`);
      }
    });
  });
  const named = new Set(refs.map((r) => r.path));
  for (const m of text.matchAll(/\$\{file:([^}]+)\}/g)) if (!named.has(m[1])) add(m[1], "text", "${file:...}");
  return refs;
}

// The relative paths a volume (or one projected source) provides, or null when it lists none.
function provided(volume, chartConfigMaps) {
  const fromItems = (src, ownKeys) => (src.items ? src.items.map((i) => i.path) : ownKeys ?? null);
  if (volume.configMap) return fromItems(volume.configMap, chartConfigMaps.get(volume.configMap.name));
  if (volume.secret) return fromItems(volume.secret, null);
  if (volume.projected) {
    const all = [];
    for (const src of volume.projected.sources ?? []) {
      const files = src.configMap ? fromItems(src.configMap, chartConfigMaps.get(src.configMap.name))
        : src.secret ? fromItems(src.secret, null)
        : [];
      if (files === null) return null;
      all.push(...files);
    }
    return all;
  }
  if (volume.emptyDir) return [];
  return null;
}

let failed = 0;
const fail = (msg) => { console.error(`check-rendered-configs: FAIL: ${msg}`); failed++; };
const material = pems(path.join(outDir, "pki"));

const scenarios = fs.readdirSync(renderedDir).filter((f) => f.endsWith(".yaml")).sort();
if (scenarios.length === 0) { fail(`no rendered scenarios in ${renderedDir}`); }
for (const file of scenarios) {
  const name = path.basename(file, ".yaml");
  const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(renderedDir, file), "utf8")).map((d) => d.toJS()).filter(Boolean);
  const chartConfigMaps = new Map(docs.filter((d) => d.kind === "ConfigMap").map((d) => [d.metadata.name, Object.keys(d.data ?? {})]));
  const workload = docs.find((d) => ["Deployment", "Job", "StatefulSet", "DaemonSet"].includes(d.kind));
  const pod = workload?.spec?.template?.spec;
  const egret = [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])].find((c) => c.name === "egret");
  if (!egret) { fail(`${name}: no egret container`); continue; }
  const configPath = (egret.env ?? []).find((e) => e.name === "EGRET_CONFIG")?.value ?? "/etc/egret/egret.yaml";
  const configDir = path.posix.dirname(configPath);
  const mounts = [...(egret.volumeMounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length);
  const mountOf = (abs) => mounts.find((m) => abs === m.mountPath || abs.startsWith(m.mountPath.replace(/\/$/, "") + "/"));
  const configMount = mountOf(configPath);
  const configVolume = configMount && (pod.volumes ?? []).find((v) => v.name === configMount.name);
  const configMapName = configVolume?.configMap?.name ?? configVolume?.projected?.sources?.find((s) => s.configMap)?.configMap?.name;
  const cm = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === configMapName);
  const text = cm?.data?.[path.posix.basename(configPath)];
  if (!text) { fail(`${name}: ${configPath} is not in a ConfigMap the egret container mounts`); continue; }

  const root = path.resolve(outDir, "configs", name);
  fs.rmSync(root, { recursive: true, force: true });
  let mapped = text;
  let ok = true;
  const refs = referencedFiles(YAML.parse(text), text);
  for (const ref of refs) {
    const abs = path.posix.isAbsolute(ref.path) ? path.posix.normalize(ref.path) : path.posix.join(configDir, ref.path);
    const mount = mountOf(abs);
    const volume = mount && (pod.volumes ?? []).find((v) => v.name === mount.name);
    if (!volume) { fail(`${name}: ${ref.where} names ${abs}, which no volume of the egret container holds`); ok = false; continue; }
    const files = provided(volume, chartConfigMaps);
    const rel = path.posix.relative(mount.mountPath, abs);
    if (files === null) { fail(`${name}: ${ref.where} names ${abs} in volume ${volume.name}, which lists no items, so nothing shows that it holds ${rel}`); ok = false; continue; }
    if (!files.includes(rel)) { fail(`${name}: ${ref.where} names ${abs}, but volume ${volume.name} mounted at ${mount.mountPath} holds only [${files.join(", ")}]`); ok = false; continue; }
    const target = path.join(root, abs);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const content = material[ref.kind];
    fs.writeFileSync(target, typeof content === "function" ? content(ref.path) : content,
      { mode: 0o600 });
    if (path.posix.isAbsolute(ref.path)) mapped = mapped.split(ref.path).join(target);
  }
  if (!ok) continue;
  const configFile = path.join(root, configPath);
  fs.mkdirSync(path.dirname(configFile), { recursive: true });
  fs.writeFileSync(configFile, mapped);
  const run = spawnSync(java[0], [...java.slice(1), "check", configFile], { encoding: "utf8" });
  if (run.status === 0) {
    console.log(`egret check: the ${name} scenario's config is valid with the ${refs.length} file(s) its pod mounts`);
  } else {
    fail(`${name}: egret check exited ${run.status}:\n${run.stdout}${run.stderr}`);
  }
}
process.exit(failed ? 1 : 0);
