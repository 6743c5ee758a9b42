import { defineConfig } from "vite";

// Served by kdhost at /activity/ (and, inside Discord, through the Activity's URL mapping).
export default defineConfig({
  base: "/activity/",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
} as never);
