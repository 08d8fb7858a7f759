// Builds the page (src/web) into dist/web. Workspace packages compile from their TypeScript sources
// (the 'source' export condition). Their Node-only modules (safetensors file I/O, checkpoint loading)
// are never called in the page; Vite swaps their node: imports for empty browser stubs, which is
// expected here, so that one warning is filtered. Dev: npx vite (proxy /api to a running server).
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'src/web',
  base: './',
  resolve: { conditions: ['source'] },
  build: {
    outDir: '../../dist/web',
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      onLog(level, log, handler) {
        if (/has been externalized for browser compatibility/.test(log.message)) return;
        handler(level, log);
      },
    },
  },
  server: { proxy: { '/api': 'http://127.0.0.1:7860' } },
});
