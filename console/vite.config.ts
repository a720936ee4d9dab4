// The console is served by kubellm-apiserver under /console/ with a strict Content-Security-Policy:
// no inline scripts or styles, so the build emits only files (no modulepreload polyfill inlined).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
  },
});
