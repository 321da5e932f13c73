/**
 * Runs before every test file: every fast-check property draws from one pinned seed, so a run is
 * repeatable and a failure prints the seed and path that replay it. BACKPASS_SEED=<integer> varies
 * the seed for an exploratory run (BACKPASS_SEED=random draws one and prints it).
 */
import fc from "fast-check";

const env = process.env.BACKPASS_SEED;
const seed = env === undefined || env === "" ? 20251126 : env === "random" ? (Math.random() * 2 ** 31) | 0 : Number(env);
if (!Number.isInteger(seed)) throw new Error(`BACKPASS_SEED must be an integer or "random", not ${JSON.stringify(env)}`);
if (env !== undefined && env !== "") console.log(`fast-check seed ${seed} (BACKPASS_SEED)`);
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
