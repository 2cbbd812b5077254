// examples/istio read the way `kubectl apply` reads it, and checked against the schemas Istio installs.
//
// Kubernetes parses manifests with sigs.k8s.io/yaml: go-yaml with YAML 1.1 resolution, where an unquoted
// all-digit scalar is an integer (the all-zero sha256 placeholder is octal 0) and yes/no/on/off are
// booleans. The Rust tests (tests/tests/examples.rs) read the same files with a YAML 1.2 parser
// (serde_yaml_ng), which keeps `0000…`, `yes` and `off` strings. So here every file is read with the `yaml`
// package in YAML 1.1 mode, and
//   * every plain (unquoted) scalar that is not a string is written the way JSON writes it, so YAML 1.1
//     (Kubernetes) and YAML 1.2 (the Rust tests) read the same value;
//   * every object validates against the schema of its apiVersion and kind (types, enums, required fields,
//     formats) and has no field the schema does not know: `kubectl apply` validates fields strictly and
//     refuses an unknown one;
//   * each check is shown to catch what it is for (the unquoted placeholder, an unknown field, `off`).
//
// Where the schemas come from: @kubernetes-models/istio 3.0.1, generated from Istio 1.29.2's CRDs
// (manifests/charts/base/files/crd-all.gen.yaml; asserted below from the package's own metadata). It is the
// newest package with Istio's schemas that the project's registries serve and this machine's node runs; none
// is generated from 1.30.x. The three schemas the examples use, WasmPlugin (extensions.istio.io/v1alpha1),
// ServiceEntry and DestinationRule (networking.istio.io/v1), are identical in Istio 1.29.2 and 1.30.3
// (1.30 only adds the TrafficExtension CRD). Secret and Deployment: kubernetes-models 5.1.0.
// Not checked here: the CRDs' CEL rules (x-kubernetes-validations, e.g. "only one of targetRefs or
// selector", "url must have schema one of [http, https, file, oci]"), which the generated validators do not
// carry; only an API server evaluates them.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { LineCounter, parseAllDocuments, visit } from "yaml";
import { WasmPlugin } from "@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin";
import { DestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule";
import { ServiceEntry } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Secret } from "kubernetes-models/v1/Secret";

const here = dirname(fileURLToPath(import.meta.url));
const examplesDir = join(here, "../../examples/istio");

// apiVersion and kind -> model, and the first Istio release that serves that API version
// (networking.istio.io/v1 arrived in 1.22; WasmPlugin in 1.12).
const KINDS = new Map([
  ["extensions.istio.io/v1alpha1 WasmPlugin", { model: WasmPlugin, istio: "1.12" }],
  ["networking.istio.io/v1 ServiceEntry", { model: ServiceEntry, istio: "1.22" }],
  ["networking.istio.io/v1 DestinationRule", { model: DestinationRule, istio: "1.22" }],
  ["v1 Secret", { model: Secret }],
  ["apps/v1 Deployment", { model: Deployment }],
]);

// How JSON writes a non-string value; any other plain scalar that YAML resolves to a non-string
// (0000, 0x1F, 1_000, yes, off, True, ~, 12:30, 2026-01-01) reads differently under YAML 1.1 and 1.2.
const JSON_LITERAL = /^(?:true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)?$/;

function exampleFiles() {
  const files = readdirSync(examplesDir).filter((f) => /\.ya?ml$/.test(f)).sort();
  assert.ok(files.length >= 3, `examples/istio holds only ${files}`);
  return files.map((name) => ({ name, text: readFileSync(join(examplesDir, name), "utf8") }));
}

/** The file's documents as Kubernetes reads them (YAML 1.1), with any parse error or warning. */
function k8sDocuments(name, text, version = "1.1") {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { version, lineCounter, prettyErrors: true });
  assert.ok(Array.isArray(docs), `${name}: no documents`);
  for (const doc of docs) {
    const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
    assert.deepEqual(problems, [], `${name}: YAML ${version} parse`);
  }
  return { docs: docs.filter((d) => d.contents !== null), lineCounter };
}

/** Plain scalars that a YAML 1.1 or 1.2 reader turns into something other than a string, unless JSON-like. */
function ambiguousScalars(name, text) {
  const found = [];
  for (const version of ["1.1", "1.2"]) {
    const { docs, lineCounter } = k8sDocuments(name, text, version);
    for (const doc of docs) {
      visit(doc, {
        Scalar(_, node) {
          if (node.type !== "PLAIN" || typeof node.value === "string") return;
          if (JSON_LITERAL.test(node.source ?? "")) return;
          const { line } = lineCounter.linePos(node.range[0]);
          found.push(`${name}:${line}: \`${node.source}\` is ${JSON.stringify(node.value)} in YAML ${version}`);
        },
      });
    }
  }
  return [...new Set(found)];
}

/**
 * Runs the model's validator over `data` and returns [errors, fields the validator never read]. The
 * generated validators read each field their schema declares; a field nobody read is unknown to the schema.
 * An object none of whose fields was read is free-form to the schema (pluginConfig is
 * x-kubernetes-preserve-unknown-fields) and is not looked into.
 */
function validate(model, data) {
  const read = new Map();
  const note = (target, key) => {
    if (typeof key !== "string") return;
    if (!read.has(target)) read.set(target, new Set());
    read.get(target).add(key);
  };
  const watched = (value) =>
    value === null || typeof value !== "object"
      ? value
      : new Proxy(value, {
          get(target, key, receiver) {
            note(target, key);
            const v = Reflect.get(target, key, receiver);
            return typeof key === "string" && Object.hasOwn(target, key) ? watched(v) : v;
          },
          has(target, key) {
            note(target, key);
            return Reflect.has(target, key);
          },
          ownKeys(target) {
            const keys = Reflect.ownKeys(target);
            keys.forEach((k) => note(target, k));
            return keys;
          },
        });
  try {
    model.prototype.validate.call(watched(data));
  } catch (e) {
    return [(e.errors ?? [e]).map((err) => `${err.instancePath ?? ""} ${err.message}`), []];
  }
  const unknown = [];
  const walk = (value, path) => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${path}[${i}]`));
    } else if (value !== null && typeof value === "object" && read.has(value)) {
      for (const [key, v] of Object.entries(value)) {
        if (read.get(value).has(key)) walk(v, `${path}.${key}`);
        else unknown.push(`${path}.${key}`);
      }
    }
  };
  walk(data, "");
  return [[], unknown];
}

function schemaFor(obj) {
  return KINDS.get(`${obj.apiVersion} ${obj.kind}`);
}

/** Every problem Kubernetes would have with one object: schema errors and unknown fields. */
function objectProblems(where, obj) {
  const kind = schemaFor(obj);
  if (!kind) return [`${where}: no schema for ${obj.apiVersion} ${obj.kind}`];
  const [errors, unknown] = validate(kind.model, obj);
  return [
    ...errors.map((e) => `${where}: ${e.trim()}`),
    ...unknown.map((f) => `${where}: unknown field ${f.slice(1)}`),
  ];
}

function objects(name, text) {
  return k8sDocuments(name, text).docs.map((doc) => doc.toJS());
}

test("every example parses as YAML 1.1, the way Kubernetes parses it", () => {
  for (const { name, text } of exampleFiles()) {
    const objs = objects(name, text);
    assert.ok(objs.length > 0, `${name}: empty`);
    for (const obj of objs) {
      for (const field of ["apiVersion", "kind"]) {
        assert.equal(typeof obj[field], "string", `${name}: ${field}`);
      }
      assert.equal(typeof obj.metadata?.name, "string", `${name}: metadata.name`);
    }
  }
});

test("plain scalars read the same under YAML 1.1 (Kubernetes) and YAML 1.2 (the Rust tests)", () => {
  for (const { name, text } of exampleFiles()) {
    assert.deepEqual(ambiguousScalars(name, text), [], "quote these values");
    assert.deepEqual(
      k8sDocuments(name, text, "1.1").docs.map((d) => d.toJS()),
      k8sDocuments(name, text, "1.2").docs.map((d) => d.toJS()),
      name,
    );
  }
});

test("every object validates against its schema and has no unknown field", () => {
  const problems = [];
  let checked = 0;
  for (const { name, text } of exampleFiles()) {
    for (const obj of objects(name, text)) {
      problems.push(...objectProblems(`${name} ${obj.kind}/${obj.metadata?.name}`, obj));
      checked += 1;
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked >= 5, `only ${checked} objects`);
});

test("an unknown field is found in every object, at the top, in metadata and in spec", () => {
  for (const { name, text } of exampleFiles()) {
    for (const obj of objects(name, text)) {
      const where = `${name} ${obj.kind}`;
      const expected = ["unknownField", "metadata.unknownField"];
      obj.unknownField = "x";
      obj.metadata.unknownField = "x";
      if (obj.spec) {
        obj.spec.unknownField = "x";
        expected.push("spec.unknownField");
      }
      assert.deepEqual(
        objectProblems(where, obj).sort(),
        expected.map((f) => `${where}: unknown field ${f}`).sort(),
      );
    }
  }
});

test("the WasmPlugin's string fields are strings as Kubernetes reads them", () => {
  const plugin = objects("wasmplugin.yaml", readFileSync(join(examplesDir, "wasmplugin.yaml"), "utf8"))
    .find((o) => o.kind === "WasmPlugin");
  for (const field of ["url", "sha256", "phase", "pluginName", "failStrategy", "imagePullPolicy"]) {
    assert.equal(typeof plugin.spec[field], "string", `spec.${field}`);
  }
  assert.match(plugin.spec.sha256, /^[0-9a-f]{64}$/);
});

test("the checks catch the unquoted placeholder, an unknown field and a YAML 1.1 boolean", () => {
  const text = readFileSync(join(examplesDir, "wasmplugin.yaml"), "utf8");
  // The placeholder as the example once shipped it: unquoted, which Kubernetes reads as the number 0.
  const unquoted = text.replace(/^(\s*sha256:\s*)(["'])([0-9a-f]{64})\2/m, "$1$3");
  assert.notEqual(unquoted, text, "wasmplugin.yaml: no quoted sha256 to unquote");
  const [plugin] = objects("wasmplugin.yaml", unquoted);
  assert.equal(typeof plugin.spec.sha256, "number");
  assert.ok(
    objectProblems("WasmPlugin", plugin).includes("WasmPlugin: /spec/sha256 must be string"),
    objectProblems("WasmPlugin", plugin).join("\n"),
  );
  assert.ok(ambiguousScalars("wasmplugin.yaml", unquoted).some((s) => s.includes("is 0 in YAML 1.1")));

  const [typo] = objects("wasmplugin.yaml", text);
  typo.spec.failStrategyy = "FAIL_CLOSE";
  typo.spec.vmConfig.env[0].valueFromm = "HOST";
  assert.deepEqual(objectProblems("WasmPlugin", typo).sort(), [
    "WasmPlugin: unknown field spec.failStrategyy",
    "WasmPlugin: unknown field spec.vmConfig.env[0].valueFromm",
  ]);
  const [free] = objects("wasmplugin.yaml", text);
  free.spec.pluginConfig.any_key_at_all = { nested: 1 };
  assert.deepEqual(objectProblems("WasmPlugin", free), [], "pluginConfig is free-form");

  const [wrongEnum] = objects("wasmplugin.yaml", text);
  wrongEnum.spec.failStrategy = "FAIL_CLOSED";
  assert.ok(objectProblems("WasmPlugin", wrongEnum).some((p) => p.includes("/spec/failStrategy")));

  const off = text.replace(/^(\s*on_failure:\s*)allow$/m, "$1off");
  assert.notEqual(off, text, "wasmplugin.yaml: no on_failure: allow");
  assert.ok(ambiguousScalars("wasmplugin.yaml", off).some((s) => s.includes("`off` is false in YAML 1.1")));
});

test("the schemas are Istio 1.29.2's, as the package says", () => {
  const require = createRequire(import.meta.url);
  const meta = JSON.parse(
    readFileSync(join(dirname(require.resolve("@kubernetes-models/istio/package.json")), "package.json"), "utf8"),
  );
  assert.equal(meta.version, "3.0.1");
  assert.ok(
    meta["crd-generate"].input.some((u) => u.includes("/istio/1.29.2/manifests/charts/base/files/crd-all.gen.yaml")),
    JSON.stringify(meta["crd-generate"]),
  );
});

test("the README states the minimum Istio release and the extension configuration name", () => {
  const readme = readFileSync(join(examplesDir, "README.md"), "utf8");
  const minimum = exampleFiles()
    .flatMap(({ name, text }) => objects(name, text))
    .map((obj) => schemaFor(obj)?.istio)
    .filter(Boolean)
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))
    .pop();
  assert.equal(minimum, "1.22");
  assert.ok(readme.includes(`Istio ${minimum} or later`), `README does not say "Istio ${minimum} or later"`);

  // Istio 1.30 serves a WasmPlugin as the TrafficExtension <name>~istio-translated-wasmplugin; the proxy's
  // extension configuration is extensions.istio.io/trafficextension/<namespace>.<that name>.
  const [plugin] = objects("wasmplugin.yaml", readFileSync(join(examplesDir, "wasmplugin.yaml"), "utf8"));
  const { name, namespace } = plugin.metadata;
  for (const expected of [
    `extensions.istio.io/trafficextension/${namespace}.${name}~istio-translated-wasmplugin`,
    `extensions.istio.io/wasmplugin/${namespace}.${name}`,
  ]) {
    assert.ok(readme.includes(expected), `README does not name ${expected}`);
  }
});
