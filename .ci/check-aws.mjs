// Checks the AWS deploy files against AWS's own machine-readable definitions (npm, no AWS
// account needed):
//   1. every deploy/stepfunctions/*.asl.json with asl-validator (the States Language schema);
//   2. each Task state's Parameters against the AWS SDK model of the API it calls (ECS RunTask,
//      Lambda Invoke, SNS Publish): member names, nesting, types, required members;
//   3. deploy/ecs/task-definition.json and task-definition-tracing.json against ECS
//      RegisterTaskDefinition's input shape;
//   4. every IAM policy file (deploy/stepfunctions/*policy.json, deploy/ecs/iam/*.json): grammar,
//      and each "service:Action" names an operation of that service's SDK model;
//   5. deploy/ecs/cloudformation.yaml against the CloudFormation resource specification
//      (@aws-cdk/cfnspec): resource types, property names and types, required properties, Ref and
//      GetAtt targets, Conditions and both branches of every Fn::If; then, resolved with
//      cloudformation-parameters.example.json, its task definition, state machine and policies
//      must equal the JSON files above, and resolved again with Tracing=enabled, its task
//      definition must equal task-definition-tracing.json and the task role's X-Ray policy
//      iam/task-role-xray-policy.json (a policy that exists only then);
//   6. the gateway's templates deploy/ecs/gateway/gateway.yaml and clients.yaml the same way, with
//      their config and state machine compared with deploy/ecs/gateway/egret.yaml and
//      deploy/stepfunctions/gateway-clients.asl.json.
//
//   node .ci/check-aws.mjs        (from the repository root; tools in .tools/npm)
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { isDeepStrictEqual } from "node:util";

const tools = path.resolve(process.env.EGRET_NPM_TOOLS ?? ".tools/npm");
const require = createRequire(path.join(tools, "package.json"));
const YAML = require("yaml");
const aslValidator = require("asl-validator");
const spec = require("@aws-cdk/cfnspec/spec/specification.json");
const api = (name) => require(`aws-sdk/apis/${name}.min.json`);

let failures = 0;
const fail = (msg) => { console.error(`check-aws: FAIL: ${msg}`); failures++; };
const readJson = (f) => JSON.parse(fs.readFileSync(f, "utf8"));

// ---- AWS SDK shapes -------------------------------------------------------------------------
// A member as the model declares it: {shape: ref} or an inline type (no type means string).
function resolveShape(model, member) {
  let m = member;
  while (m && m.shape) m = { ...model.shapes[m.shape], ...Object.fromEntries(Object.entries(m).filter(([k]) => k !== "shape")) };
  return m ?? {};
}
// Checks value against a shape. style "sfn": member names are PascalCase of the model's, keys
// ending in ".$" hold paths or intrinsic functions (checked by asl-validator, not typed here).
function checkShape(model, member, value, where, style) {
  const shape = resolveShape(model, member);
  const type = shape.type ?? (shape.members ? "structure" : "string");
  const typeOf = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  switch (type) {
    case "structure": {
      if (typeOf !== "object") return fail(`${where}: expected an object, got ${typeOf}`);
      const members = shape.members ?? {};
      const nameOf = (m) => (style === "sfn" ? m[0].toUpperCase() + m.slice(1) : m);
      const byName = new Map(Object.keys(members).map((m) => [nameOf(m), m]));
      for (const [key, v] of Object.entries(value)) {
        const dynamic = style === "sfn" && key.endsWith(".$");
        const name = dynamic ? key.slice(0, -2) : key;
        const m = byName.get(name);
        if (!m) { fail(`${where}: unknown member ${key} (the model has ${[...byName.keys()].join(", ")})`); continue; }
        if (dynamic) {
          if (typeof v !== "string" || !(v.startsWith("$") || v.startsWith("States."))) fail(`${where}.${key}: a .$ member must hold a path or an intrinsic function`);
          continue;
        }
        checkShape(model, members[m], v, `${where}.${key}`, style);
      }
      for (const req of shape.required ?? []) {
        const n = nameOf(req);
        if (!(n in value) && !(`${n}.$` in value)) fail(`${where}: required member ${n} is missing`);
      }
      return;
    }
    case "list":
      if (typeOf !== "array") return fail(`${where}: expected a list, got ${typeOf}`);
      value.forEach((v, i) => checkShape(model, shape.member, v, `${where}[${i}]`, style));
      return;
    case "map":
      if (typeOf !== "object") return fail(`${where}: expected a map, got ${typeOf}`);
      for (const [k, v] of Object.entries(value)) checkShape(model, shape.value, v, `${where}.${k}`, style);
      return;
    case "string": case "timestamp":
      if (typeOf !== "string") fail(`${where}: expected a string, got ${typeOf}`);
      return;
    case "integer": case "long": case "float": case "double":
      if (typeOf !== "number") fail(`${where}: expected a number, got ${typeOf}`);
      return;
    case "boolean":
      if (typeOf !== "boolean") fail(`${where}: expected a boolean, got ${typeOf}`);
      return;
    case "blob":
      return; // Step Functions takes JSON for a Payload blob
    default:
      fail(`${where}: shape type ${type} not understood by this check`);
  }
}

// ---- 1 and 2: state machines -----------------------------------------------------------------
const INTEGRATIONS = [
  { re: /^arn:aws:states:::ecs:runTask(\.sync|\.waitForTaskToken)?$/, model: "ecs-2014-11-13", op: "RunTask" },
  { re: /^arn:aws:states:::lambda:invoke(\.waitForTaskToken)?$/, model: "lambda-2015-03-31", op: "Invoke" },
  { re: /^arn:aws:states:::sns:publish(\.waitForTaskToken)?$/, model: "sns-2010-03-31", op: "Publish" },
];
function* allStates(states, prefix = "") {
  for (const [name, state] of Object.entries(states ?? {})) {
    yield [prefix + name, state];
    for (const b of state.Branches ?? []) yield* allStates(b.States, `${prefix}${name}/`);
    const inner = state.ItemProcessor ?? state.Iterator;
    if (inner) yield* allStates(inner.States, `${prefix}${name}/`);
  }
}
const machines = fs.readdirSync("deploy/stepfunctions").filter((f) => f.endsWith(".asl.json")).sort();
if (machines.length === 0) fail("no deploy/stepfunctions/*.asl.json");
for (const f of machines) {
  const file = path.join("deploy/stepfunctions", f);
  const definition = readJson(file);
  const result = aslValidator(definition);
  if (!result.isValid) { fail(`${file}: asl-validator: ${result.errorsText("\n  ")}`); continue; }
  let tasks = 0;
  for (const [name, state] of allStates(definition.States)) {
    if (state.Type !== "Task") continue;
    tasks++;
    const resource = state.Resource ?? "";
    const integration = INTEGRATIONS.find((i) => i.re.test(resource));
    if (integration) {
      const model = api(integration.model);
      const params = state.Parameters ?? state.Arguments;
      if (!params) { fail(`${file}: ${name}: ${resource} without Parameters`); continue; }
      checkShape(model, model.operations[integration.op].input, params, `${file}: ${name}.Parameters`, "sfn");
    } else if (!/^arn:aws:lambda:[^:]+:\d{12}:function:/.test(resource) && !resource.startsWith("arn:aws:states:::aws-sdk:")) {
      fail(`${file}: ${name}: no SDK shape known for Resource ${resource}; add it to .ci/check-aws.mjs`);
    }
  }
  console.log(`${file}: valid States Language, ${tasks} Task state(s) checked against the SDK models`);
}

// ---- 3: the ECS task definition --------------------------------------------------------------
const ecs = api("ecs-2014-11-13");
for (const file of ["deploy/ecs/task-definition.json", "deploy/ecs/task-definition-tracing.json"]) {
  const before = failures;
  checkShape(ecs, ecs.operations.RegisterTaskDefinition.input, readJson(file), file, "api");
  if (failures === before) console.log(`${file}: matches ECS RegisterTaskDefinition's input shape`);
}

// ---- 4: IAM policies ----------------------------------------------------------------------------
const SERVICE_MODELS = { ecs: "ecs-2014-11-13", events: "eventbridge-2015-10-07", sns: "sns-2010-03-31",
  ssm: "ssm-2014-11-06", secretsmanager: "secretsmanager-2017-10-17", logs: "logs-2014-03-28",
  ecr: "ecr-2015-09-21", states: "states-2016-11-23", lambda: "lambda-2015-03-31", sts: "sts-2011-06-15",
  iam: "iam-2010-05-08", xray: "xray-2016-04-12" };
// Permissions that are not API operations of their service.
// lambda:InvokeFunction is the permission for the SDK's Invoke.
const PERMISSION_ONLY = new Set(["iam:PassRole", "lambda:InvokeFunction"]);
function checkPolicy(doc, where, trust) {
  if (doc.Version !== "2012-10-17") fail(`${where}: Version must be "2012-10-17"`);
  const statements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
  statements.forEach((s, i) => {
    const w = `${where}: Statement[${i}]${s.Sid ? ` (${s.Sid})` : ""}`;
    const known = new Set(["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Principal"]);
    for (const k of Object.keys(s)) if (!known.has(k)) fail(`${w}: unknown key ${k}`);
    if (!["Allow", "Deny"].includes(s.Effect)) fail(`${w}: Effect must be Allow or Deny`);
    if (trust ? !s.Principal : !s.Resource) fail(`${w}: ${trust ? "a trust policy names a Principal" : "no Resource"}`);
    if (!trust && s.Principal) fail(`${w}: an identity policy has no Principal`);
    for (const action of [s.Action ?? []].flat()) {
      const [service, op] = String(action).split(":");
      if (!op) { fail(`${w}: action ${action} is not service:Action`); continue; }
      if (PERMISSION_ONLY.has(action) || op.includes("*")) continue;
      const model = SERVICE_MODELS[service];
      if (!model) { fail(`${w}: no SDK model known for service ${service}; add it to .ci/check-aws.mjs`); continue; }
      if (!api(model).operations[op]) fail(`${w}: ${service} has no operation ${op}`);
    }
  });
}
const policyFiles = [
  ...fs.readdirSync("deploy/stepfunctions").filter((f) => f.endsWith("policy.json")).map((f) => path.join("deploy/stepfunctions", f)),
  ...(fs.existsSync("deploy/ecs/iam") ? fs.readdirSync("deploy/ecs/iam").filter((f) => f.endsWith(".json")).map((f) => path.join("deploy/ecs/iam", f)) : []),
];
for (const f of policyFiles) {
  const b = failures;
  checkPolicy(readJson(f), f, /trust/.test(path.basename(f)));
  if (failures === b) console.log(`${f}: a valid IAM policy; every action is an operation of its service`);
}

// ---- 5: CloudFormation ----------------------------------------------------------------------------
const CFN = "deploy/ecs/cloudformation.yaml";
const shortTags = ["Ref", "Sub", "GetAtt", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
  "FindInMap", "ImportValue", "Base64", "Cidr", "GetAZs"].map((n) => ({
  tag: `!${n}`,
  collection: undefined,
  resolve: (v) => ({ [n === "Ref" ? "Ref" : `Fn::${n}`]: n === "GetAtt" && typeof v === "string" ? v.split(".") : v }),
}));
const seqTags = shortTags.map((t) => ({ ...t, collection: "seq", resolve: (v) => t.resolve(v.toJSON()) }));
const mapTags = shortTags.map((t) => ({ ...t, collection: "map", resolve: (v) => t.resolve(v.toJSON()) }));
const parseTemplate = (file) => YAML.parse(fs.readFileSync(file, "utf8"), { customTags: [...shortTags, ...seqTags, ...mapTags] });
// The template being checked (section 6 points these at the gateway templates in turn).
let template = parseTemplate(CFN);
const PSEUDO = new Set(["AWS::AccountId", "AWS::Region", "AWS::Partition", "AWS::StackName", "AWS::StackId", "AWS::URLSuffix", "AWS::NoValue"]);
let resources = template.Resources ?? {};
let parameters = template.Parameters ?? {};
let conditions = template.Conditions ?? {};
const NO_VALUE = Symbol("AWS::NoValue");
const isNoValue = (v) => v && typeof v === "object" && v.Ref === "AWS::NoValue" && Object.keys(v).length === 1;
const isIntrinsic = (v) => v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1
  && (Object.keys(v)[0] === "Ref" || Object.keys(v)[0].startsWith("Fn::"));
function checkRefs(v, where) {
  if (Array.isArray(v)) return v.forEach((x, i) => checkRefs(x, `${where}[${i}]`));
  if (!v || typeof v !== "object") return;
  if ("Ref" in v && !(v.Ref in resources) && !(v.Ref in parameters) && !PSEUDO.has(v.Ref)) fail(`${where}: Ref ${v.Ref} names nothing`);
  if ("Fn::If" in v) {
    const args = v["Fn::If"];
    if (!Array.isArray(args) || args.length !== 3) fail(`${where}: Fn::If takes [condition, then, else]`);
    else if (!(args[0] in conditions)) fail(`${where}: Fn::If names condition ${args[0]}, which Conditions does not define`);
  }
  if ("Fn::GetAtt" in v) {
    const [r, attr] = v["Fn::GetAtt"];
    const type = resources[r]?.Type;
    if (!type) fail(`${where}: GetAtt ${r} names no resource`);
    else if (!(attr in (spec.ResourceTypes[type].Attributes ?? {}))) fail(`${where}: ${type} has no attribute ${attr}`);
  }
  if ("Fn::Sub" in v) {
    const text = Array.isArray(v["Fn::Sub"]) ? v["Fn::Sub"][0] : v["Fn::Sub"];
    for (const m of String(text).matchAll(/\$\{([^}!]+)\}/g)) {
      const [r, attr] = m[1].split(".");
      if (attr ? !(r in resources) : !(r in resources) && !(r in parameters) && !PSEUDO.has(r)) fail(`${where}: Sub names \${${m[1]}}, which is nothing`);
    }
  }
  for (const [k, x] of Object.entries(v)) checkRefs(x, `${where}.${k}`);
}
// Validates against the specification and returns the API-style (camelCase) equivalent.
function checkCfn(resourceType, prop, value, where) {
  // Both branches of an Fn::If must be valid where it stands (AWS::NoValue removes the key).
  if (value && typeof value === "object" && "Fn::If" in value && Object.keys(value).length === 1) {
    const [cond, yes, no] = value["Fn::If"];
    const branch = (b, w) => (isNoValue(b) ? b : checkCfn(resourceType, prop, b, w));
    return { "Fn::If": [cond, branch(yes, `${where}(${cond})`), branch(no, `${where}(not ${cond})`)] };
  }
  if (isIntrinsic(value)) return value;
  const primitive = (p, v, w) => {
    if (isIntrinsic(v) || p === "Json") return v;
    const ok = { String: "string", Integer: "number", Long: "number", Double: "number", Boolean: "boolean", Timestamp: "string" }[p];
    // CloudFormation converts scalars to the property's type; only structure mismatches are errors.
    if (v === null || typeof v === "object") fail(`${w}: expected ${p}, got ${Array.isArray(v) ? "a list" : "an object"}`);
    else if (ok === "number" && Number.isNaN(Number(v))) fail(`${w}: expected ${p}, got ${JSON.stringify(v)}`);
    return v;
  };
  const typed = (typeName, v, w) => {
    const def = spec.PropertyTypes[`${resourceType}.${typeName}`] ?? spec.PropertyTypes[typeName];
    if (!def) { fail(`${w}: no property type ${typeName}`); return v; }
    return checkProperties(resourceType, def.Properties, v, w);
  };
  if (prop.PrimitiveType) return primitive(prop.PrimitiveType, value, where);
  if (prop.Type === "List") {
    if (!Array.isArray(value)) { fail(`${where}: expected a list`); return value; }
    return value.map((v, i) => {
      if (v && typeof v === "object" && "Fn::If" in v && Object.keys(v).length === 1) {
        // A list item chosen by a condition: each branch is an item (or AWS::NoValue, none).
        const [cond, yes, no] = v["Fn::If"];
        const item = (b, w) => (isNoValue(b) ? b : prop.PrimitiveItemType ? primitive(prop.PrimitiveItemType, b, w) : typed(prop.ItemType, b, w));
        return { "Fn::If": [cond, item(yes, `${where}[${i}](${cond})`), item(no, `${where}[${i}](not ${cond})`)] };
      }
      return prop.PrimitiveItemType ? primitive(prop.PrimitiveItemType, v, `${where}[${i}]`) : typed(prop.ItemType, v, `${where}[${i}]`);
    });
  }
  if (prop.Type === "Map") {
    if (!value || typeof value !== "object" || Array.isArray(value)) { fail(`${where}: expected a map`); return value; }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, prop.PrimitiveItemType ? primitive(prop.PrimitiveItemType, v, `${where}.${k}`) : typed(prop.ItemType, v, `${where}.${k}`)]));
  }
  return typed(prop.Type, value, where);
}
function checkProperties(resourceType, props, value, where) {
  if (!value || typeof value !== "object" || Array.isArray(value)) { fail(`${where}: expected an object`); return value; }
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    if (!props[k]) { fail(`${where}: ${resourceType} has no property ${k}`); continue; }
    out[k[0].toLowerCase() + k.slice(1)] = checkCfn(resourceType, props[k], v, `${where}.${k}`);
  }
  for (const [k, p] of Object.entries(props)) if (p.Required && !(k in value)) fail(`${where}: required property ${k} is missing`);
  return out;
}
// Every resource of the current template against the specification; returns the API-style
// (camelCase) properties by resource name.
function checkTemplateSpec(file) {
  const apiStyle = {};
  if (template.AWSTemplateFormatVersion !== "2010-09-09") fail(`${file}: AWSTemplateFormatVersion`);
  for (const [name, r] of Object.entries(resources)) {
    const type = spec.ResourceTypes[r.Type];
    if (!type) { fail(`${file}: ${name}: unknown resource type ${r.Type}`); continue; }
    for (const k of Object.keys(r)) if (!["Type", "Properties", "DependsOn", "Condition", "DeletionPolicy", "UpdateReplacePolicy", "Metadata"].includes(k)) fail(`${file}: ${name}: unknown key ${k}`);
    for (const d of [r.DependsOn ?? []].flat()) if (!(d in resources)) fail(`${file}: ${name}: DependsOn ${d} names no resource`);
    if (r.Condition !== undefined && !(r.Condition in conditions)) fail(`${file}: ${name}: Condition ${r.Condition} is not defined in Conditions`);
    apiStyle[name] = checkProperties(r.Type, type.Properties, r.Properties ?? {}, `${file}: ${name}`);
  }
  checkRefs(template, file);
  return apiStyle;
}
const apiStyle = checkTemplateSpec(CFN);

// Resolve with the example parameters and compare with the JSON files.
const example = readJson("deploy/ecs/cloudformation-parameters.example.json");
const attrs = {
  "ExecutionRole.Arn": `arn:aws:iam::${example["AWS::AccountId"]}:role/crm-sync-execution`,
  "TaskRole.Arn": `arn:aws:iam::${example["AWS::AccountId"]}:role/crm-sync-task`,
  "Cluster.Arn": `arn:aws:ecs:${example["AWS::Region"]}:${example["AWS::AccountId"]}:cluster/workflows`,
  FailureTopic: `arn:aws:sns:${example["AWS::Region"]}:${example["AWS::AccountId"]}:crm-sync-failures`,
};
// The parameter values of the resolution under way: the example's, or the example's with
// Tracing=enabled (then the task definition is task-definition-tracing.json).
let given = example;
const value = (name) => {
  if (name in given) return given[name];
  if (name in attrs) return attrs[name];
  if (parameters[name]?.Default !== undefined) return parameters[name].Default;
  throw new Error(`no example value for ${name}`);
};
function condition(name) {
  if (!(name in conditions)) throw new Error(`no condition ${name}`);
  const test = (c) => {
    const [fn, arg] = Object.entries(c)[0];
    if (fn === "Condition") return condition(arg);
    if (fn === "Fn::Equals") return isDeepStrictEqual(resolve(arg[0]), resolve(arg[1]));
    if (fn === "Fn::Not") return !test(arg[0]);
    if (fn === "Fn::And") return arg.every(test);
    if (fn === "Fn::Or") return arg.some(test);
    throw new Error(`cannot evaluate ${fn} in condition ${name}`);
  };
  return test(conditions[name]);
}
function resolve(v) {
  if (Array.isArray(v)) return v.map(resolve).filter((x) => x !== NO_VALUE);
  if (!v || typeof v !== "object") return v;
  if (isIntrinsic(v)) {
    const [fn, arg] = Object.entries(v)[0];
    if (fn === "Ref" && arg === "AWS::NoValue") return NO_VALUE;
    if (fn === "Fn::If") return resolve(condition(arg[0]) ? arg[1] : arg[2]);
    if (fn === "Ref") return value(arg);
    if (fn === "Fn::GetAtt") return value(arg.join("."));
    // ${!Name} is CloudFormation's escape for a literal ${Name}.
    if (fn === "Fn::Sub") return String(arg).replace(/\$\{([^}]+)\}/g, (_, n) => (n.startsWith("!") ? `\${${n.slice(1)}}` : value(n)));
    if (fn === "Fn::Join") return resolve(arg[1]).join(arg[0]);
    throw new Error(`cannot resolve ${fn}`);
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x)]).filter(([, x]) => x !== NO_VALUE));
}
function sameAs(what, got, file) {
  const want = readJson(file);
  if (isDeepStrictEqual(got, want)) console.log(`${CFN}: ${what} equals ${file}`);
  else fail(`${CFN}: ${what} differs from ${file}:\n  got  ${JSON.stringify(got).slice(0, 600)}\n  want ${JSON.stringify(want).slice(0, 600)}`);
}
try {
  sameAs("the TaskDefinition", resolve(apiStyle.TaskDefinition), "deploy/ecs/task-definition.json");
  sameAs("the StateMachine's Definition", resolve(resources.StateMachine.Properties.Definition), "deploy/stepfunctions/crm-sync.asl.json");
  sameAs("the state machine role's policy", resolve(resources.StateMachineRole.Properties.Policies[0].PolicyDocument), "deploy/stepfunctions/state-machine-policy.json");
  for (const [name, file] of [["ExecutionRole", "execution-role-trust.json"], ["TaskRole", "task-role-trust.json"], ["StateMachineRole", "state-machine-role-trust.json"]]) {
    sameAs(`${name}'s trust policy`, resolve(resources[name].Properties.AssumeRolePolicyDocument), path.join("deploy/ecs/iam", file));
  }
  sameAs("ExecutionRole's inline policy", resolve(resources.ExecutionRole.Properties.Policies[0].PolicyDocument), "deploy/ecs/iam/execution-role-policy.json");
  for (const [name, r] of Object.entries(resources)) {
    for (const p of r.Properties?.Policies ?? []) checkPolicy(resolve(p.PolicyDocument), `${CFN}: ${name}.${p.PolicyName}`, false);
    if (r.Properties?.AssumeRolePolicyDocument) checkPolicy(resolve(r.Properties.AssumeRolePolicyDocument), `${CFN}: ${name} trust`, true);
    if (r.Type === "AWS::IAM::Policy") checkPolicy(resolve(r.Properties.PolicyDocument), `${CFN}: ${name}`, false);
  }
  // Tracing: off in the example (the default), the X-Ray policy is not created; on, the task
  // definition gains the collector and the task role the policy.
  const xray = Object.entries(resources).filter(([, r]) => r.Type === "AWS::IAM::Policy"
    && JSON.stringify(r.Properties?.PolicyDocument ?? {}).includes("xray:PutTraceSegments"));
  if (xray.length !== 1) fail(`${CFN}: expected one AWS::IAM::Policy granting xray:PutTraceSegments, found ${xray.length}`);
  else if (!xray[0][1].Condition || condition(xray[0][1].Condition)) fail(`${CFN}: ${xray[0][0]} must exist only with Tracing=enabled`);
  else console.log(`${CFN}: ${xray[0][0]} is not created with the example's parameters (Tracing ${value("Tracing")})`);
  given = { ...example, Tracing: "enabled" };
  if (!xray.length || !condition(xray[0][1].Condition)) fail(`${CFN}: Tracing=enabled does not create the X-Ray policy`);
  sameAs("the TaskDefinition with Tracing=enabled", resolve(apiStyle.TaskDefinition), "deploy/ecs/task-definition-tracing.json");
  if (xray.length) {
    sameAs(`${xray[0][0]}'s policy with Tracing=enabled`, resolve(xray[0][1].Properties.PolicyDocument), "deploy/ecs/iam/task-role-xray-policy.json");
    if (!isDeepStrictEqual(xray[0][1].Properties.Roles, [{ Ref: "TaskRole" }])) fail(`${CFN}: ${xray[0][0]} is not attached to TaskRole alone`);
  }
  given = example;
} catch (e) {
  fail(`${CFN}: ${e.message}`);
}
const mainResources = Object.keys(resources).length;

// ---- 6: the gateway's templates (deploy/ecs/gateway) ---------------------------------------------
// Both against the specification, with their IAM policies; gateway.yaml's config parameter,
// resolved with the example VPC CIDR, must be deploy/ecs/gateway/egret.yaml (after its leading
// comment), and clients.yaml's state machine must be deploy/stepfunctions/gateway-clients.asl.json.
const GATEWAY = "deploy/ecs/gateway/gateway.yaml";
const CLIENTS = "deploy/ecs/gateway/clients.yaml";
for (const file of [GATEWAY, CLIENTS]) {
  try {
    template = parseTemplate(file);
    resources = template.Resources ?? {};
    parameters = template.Parameters ?? {};
    conditions = template.Conditions ?? {};
    const before = failures;
    checkTemplateSpec(file);
    for (const [name, r] of Object.entries(resources)) {
      for (const p of r.Properties?.Policies ?? []) checkPolicy(p.PolicyDocument, `${file}: ${name}.${p.PolicyName}`, false);
      if (r.Properties?.AssumeRolePolicyDocument) checkPolicy(r.Properties.AssumeRolePolicyDocument, `${file}: ${name} trust`, true);
    }
    if (file === GATEWAY) {
      given = { VpcCidr: "10.0.0.0/16" };
      const got = resolve(resources.ConfigParameter.Properties.Value);
      const want = fs.readFileSync("deploy/ecs/gateway/egret.yaml", "utf8").replace(/^(#[^\n]*\n)+/, "");
      if (got === want) console.log(`${file}: ConfigParameter (VpcCidr 10.0.0.0/16) equals deploy/ecs/gateway/egret.yaml`);
      else fail(`${file}: ConfigParameter resolved with VpcCidr 10.0.0.0/16 differs from deploy/ecs/gateway/egret.yaml (after its leading comment)`);
      given = example;
    } else {
      const asl = "deploy/stepfunctions/gateway-clients.asl.json";
      if (isDeepStrictEqual(resources.StateMachine.Properties.Definition, readJson(asl))) console.log(`${file}: the StateMachine's Definition equals ${asl}`);
      else fail(`${file}: the StateMachine's Definition differs from ${asl}`);
      const subs = Object.keys(resources.StateMachine.Properties.DefinitionSubstitutions ?? {}).sort();
      const used = [...new Set([...JSON.stringify(readJson(asl)).matchAll(/\$\{([A-Za-z0-9]+)\}/g)].map((m) => m[1]))].sort();
      if (!isDeepStrictEqual(subs, used)) fail(`${file}: DefinitionSubstitutions ${subs} differ from what ${asl} uses: ${used}`);
    }
    if (failures === before) console.log(`${file}: ${Object.keys(resources).length} resources valid against the CloudFormation resource specification`);
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
}

if (failures) {
  console.error(`check-aws: ${failures} problem(s)`);
  process.exit(1);
}
console.log(`${CFN}: ${mainResources} resources valid against the CloudFormation resource specification ${spec.ResourceSpecificationVersion}`);
console.log("check-aws: OK");
