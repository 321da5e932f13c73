/**
 * The process around the command line: runs `run` (cli.ts) on the process's arguments and exits
 * with its code. Importing cli.ts does nothing by itself; only this module touches the process.
 */
import { run } from "./cli.js";

let code: number;
try {
  code = await run(process.argv.slice(2), {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
  });
} catch (e) {
  process.stderr.write(`backpass: internal error (a bug in backpass; please report it):\n${(e as Error).stack ?? String(e)}\n`);
  code = 1;
}
process.exit(code);
