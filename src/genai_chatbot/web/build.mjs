// Bundle vendor-entry.js into static/vendor/vendor.js and gather the licences into static/vendor/NOTICE.
// Run after `npm ci`: `npm run build`. The output is committed, so installing the Python package is enough.
import { readFileSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

const out = "static/vendor";
await build({
  entryPoints: ["vendor-entry.js"],
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  legalComments: "none",
  outfile: `${out}/vendor.js`,
});

const packages = [
  ["marked", "LICENSE"],
  ["dompurify", "LICENSE"],
  ["highlight.js", "LICENSE"],
];
const notice = ["static/vendor/vendor.js bundles the following packages, built by build.mjs from the npm registry.", ""];
for (const [name, licence] of packages) {
  const meta = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8"));
  notice.push("=".repeat(78), `${name} ${meta.version} (${meta.license}) ${meta.homepage ?? ""}`.trim(), "=".repeat(78));
  notice.push(readFileSync(`node_modules/${name}/${licence}`, "utf8").trim(), "");
}
writeFileSync(`${out}/NOTICE`, notice.join("\n"));
console.log(`built ${out}/vendor.js and ${out}/NOTICE`);
