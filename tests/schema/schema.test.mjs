// schemas/sluice.schema.json: every example validates, and every spec in
// bad/ is rejected by the schema AND by `sluicec check` (exit 1), so the
// editor and the compiler cannot drift apart on what they refuse.
// SLUICEC_BIN is set by tests/schema/CMakeLists.txt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import Ajv2020 from "ajv/dist/2020.js";
import YAML from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const schema = JSON.parse(readFileSync(join(root, "schemas", "sluice.schema.json"), "utf8"));
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
const validate = ajv.compile(schema);
const sluicec = process.env.SLUICEC_BIN;

function load(path) {
  // The YAML 1.2 core schema, as the VS Code YAML extension reads files.
  return YAML.parse(readFileSync(path, "utf8"), { merge: true });
}

function yamlFiles(dir) {
  return readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort().map((f) => join(dir, f));
}

for (const file of yamlFiles(join(root, "examples"))) {
  test(`example ${file.slice(root.length + 1)} validates`, () => {
    const text = readFileSync(file, "utf8");
    assert.match(text, /^# yaml-language-server: \$schema=\.\.\/schemas\/sluice\.schema\.json\n/);
    const ok = validate(load(file));
    assert.ok(ok, JSON.stringify(validate.errors, null, 2));
  });
}

for (const file of yamlFiles(join(root, "tests", "compiler", "good"))) {
  test(`compiler good spec ${file.slice(root.length + 1)} validates`, () => {
    const ok = validate(load(file));
    assert.ok(ok, JSON.stringify(validate.errors, null, 2));
  });
}

for (const file of yamlFiles(join(here, "bad"))) {
  const name = file.slice(root.length + 1);
  test(`${name} is rejected by the schema`, () => {
    assert.equal(validate(load(file)), false, `${name} validated`);
  });
  test(`${name} is rejected by sluicec check`, () => {
    assert.ok(sluicec, "SLUICEC_BIN must name sluicec");
    const r = spawnSync(sluicec, ["check", file], { encoding: "utf8" });
    assert.equal(r.status, 1, `sluicec check exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, /error: /);
  });
}

test("the schema knows every key the compiler's spec reader accepts", () => {
  // Keys listed in the spec readers' (compiler/spec.c, spec_tls.c)
  // `static const char *const keys[] = {...}` tables must each appear as a
  // property name somewhere in the schema.
  const src = ["spec.c", "spec_tls.c"].map((f) => readFileSync(join(root, "compiler", f), "utf8")).join("\n");
  const names = new Set();
  for (const m of src.matchAll(/static const char \*const \w*keys\[\] = \{([^}]*)\}/g))
    for (const k of m[1].matchAll(/"([a-z_]+)"/g)) names.add(k[1]);
  assert.ok(names.size > 30, `parsed only ${names.size} keys from spec.c`);
  const props = new Set();
  (function walk(node) {
    if (node && typeof node === "object") {
      if (node.properties) for (const k of Object.keys(node.properties)) props.add(k);
      for (const v of Object.values(node)) walk(v);
    }
  })(schema);
  const missing = [...names].filter((k) => !props.has(k));
  assert.deepEqual(missing, []);
});

// The schema's `kind` values are exactly the protocols and presets sluicec
// knows (`sluicec presets`, one per line), so editors offer what compiles.
test("schema kind enum matches sluicec presets", () => {
  const r = spawnSync(sluicec, ["presets"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const names = r.stdout.trim().split("\n").map((l) => l.split("\t")[0]).sort();
  assert.deepEqual([...schema.$defs.provider.properties.kind.enum].sort(), names);
  assert.ok(names.includes("groq") && names.includes("azure"));
});
