// Bundles src/main.ts into dist/app.js with esbuild and copies the static
// files. The output depends only on the sources and the pinned versions in
// package-lock.json: no timestamps, no source maps with absolute paths, no
// banner, so a rebuild of unchanged sources gives the same bytes.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  absWorkingDir: here,
  entryPoints: ["src/main.ts"],
  outfile: "dist/app.js",
  bundle: true,
  format: "iife",
  platform: "browser",
  target: ["chrome111", "firefox111", "safari16"],
  minify: true,
  legalComments: "none",
  sourcemap: false,
  charset: "utf8",
  logLevel: "warning",
});
for (const f of ["index.html", "style.css"]) {
  await copyFile(join(here, "src", f), join(dist, f));
}
