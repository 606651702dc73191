// Bundle vendor-entry.js into static/vendor/vendor.js, copy Swagger UI (for /docs) into static/vendor/swagger-ui/,
// and gather the licences into static/vendor/NOTICE.
// Run after `npm ci`: `npm run build`. The output is committed, so installing the Python package is enough.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
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

// Swagger UI ships prebuilt; only the two files /docs loads are copied, without their source-map comments
// (the maps are not shipped, and a browser would ask for them).
mkdirSync(`${out}/swagger-ui`, { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
  const text = readFileSync(`node_modules/swagger-ui-dist/${file}`, "utf8");
  writeFileSync(`${out}/swagger-ui/${file}`, text.replace(/\n?\/[/*]# sourceMappingURL=\S+?(\s*\*\/)?\s*$/, "\n"));
}

const packages = [
  ["marked", "LICENSE", "vendor.js"],
  ["dompurify", "LICENSE", "vendor.js"],
  ["highlight.js", "LICENSE", "vendor.js"],
  ["swagger-ui-dist", "LICENSE", "swagger-ui/"],
];
const notice = ["static/vendor/ holds the following packages, built by build.mjs from the npm registry.", ""];
for (const [name, licence, where] of packages) {
  const meta = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8"));
  const title = `${name} ${meta.version} (${meta.license}) ${meta.homepage ?? ""}`.trim();
  notice.push("=".repeat(78), `${title}, in ${where}`, "=".repeat(78));
  notice.push(readFileSync(`node_modules/${name}/${licence}`, "utf8").trim(), "");
}
writeFileSync(`${out}/NOTICE`, notice.join("\n"));
console.log(`built ${out}/vendor.js, ${out}/swagger-ui/ and ${out}/NOTICE`);
