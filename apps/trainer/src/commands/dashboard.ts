// `grin dashboard [--runs DIR] [--port N] [--host H]`: serves the dashboard page (built with Vite,
// built on the spot when dist/web is missing) and its JSON API over a runs directory, bound to
// 127.0.0.1 unless --host says otherwise, and prints the URL. A non-loopback --host needs --token
// (or GRIN_DASHBOARD_TOKEN) and prints a warning. Runs until interrupted.
// Test: cd apps/dashboard && npx vitest run (server and end-to-end tests)
import { CliError, type Command, parseFlags } from '../args.js';

export const dashboardCommand: Command = {
  name: 'dashboard',
  summary:
    'web page with training curves and routing heatmaps of the runs in a directory, live while they train',
  usage: 'grin dashboard [--runs DIR] [--port N] [--host H --token T]',
  flags: {
    runs: {
      kind: 'string',
      help: 'runs directory (one folder per run, as written by grin train)',
      default: 'runs',
    },
    port: { kind: 'number', help: 'TCP port; 0 picks a free one', default: 7860, integer: true, min: 0 },
    host: {
      kind: 'string',
      help: 'address to bind; anything but loopback exposes your runs to the network',
      default: '127.0.0.1',
    },
    token: {
      kind: 'string',
      help: 'required with a non-loopback --host (at least 8 characters; default $GRIN_DASHBOARD_TOKEN)',
    },
  },
  async run(argv) {
    // loaded here so that the CLI starts without the dashboard built (pnpm train skips it)
    const { ensureWebBuilt, startDashboard } = await import('@grin-moe/dashboard');
    const { flags, positional } = parseFlags(dashboardCommand, argv);
    if (positional.length)
      throw new CliError(
        `dashboard: unexpected argument '${positional[0]}'; usage: ${dashboardCommand.usage}`,
      );
    const webDir = ensureWebBuilt();
    let dashboard: Awaited<ReturnType<typeof startDashboard>>;
    try {
      dashboard = await startDashboard({
        runsDir: String(flags.runs),
        port: Number(flags.port),
        host: String(flags.host),
        token: (flags.token as string | undefined) ?? process.env.GRIN_DASHBOARD_TOKEN ?? null,
        webDir,
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE')
        throw new CliError(
          `dashboard: port ${flags.port} is in use; pass --port N (or --port 0 for any free port)`,
        );
      throw new CliError(`dashboard: ${(error as Error).message}`);
    }
    if (dashboard.warning) process.stderr.write(`grin dashboard: ${dashboard.warning}\n`);
    process.stdout.write(`grin dashboard: serving ${flags.runs} at ${dashboard.url}  (Ctrl+C to stop)\n`);
    await new Promise<void>((done) => {
      const stop = () => void dashboard.close().then(done);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
