// Entry of `omg-llava-bot` (bin/omg-llava-bot.js runs it through tsx). It builds the same core as `npm start`, on the
// in-process queue, asks one question and exits with a code that says what went wrong.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, loadConfigFromEnvironment, type Config } from '../../config.js';
import { toOmgError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { parseArgs, usage, UsageError, type AskArgs } from './args.js';
import { readInputs, runAsk, type AskInputs } from './ask.js';
import { exitCodeFor, exitCodes } from './exit-codes.js';

// The embedded bundle ships inside the package, so `npx omg-llava-bot` finds it from any working directory.
const embeddedModel = fileURLToPath(new URL('../../../models/omg-llava-nano', import.meta.url));

/** --model wins, then MODEL_DIR when set to something else than the default, then the embedded bundle. */
function modelDir(args: AskArgs, config: Config): string {
  if (args.model) return args.model;
  if (config.MODEL_DIR !== loadConfig({}).MODEL_DIR || existsSync(config.MODEL_DIR)) return config.MODEL_DIR;
  return embeddedModel;
}

async function main(argv: string[]): Promise<number> {
  const say = (text: string) => process.stderr.write(text);
  let args: AskArgs;
  try {
    const parsed = parseArgs(argv);
    if (parsed.command === 'help') {
      process.stdout.write(`${usage}\n`);
      return exitCodes.ok;
    }
    args = parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    say(`omg-llava-bot: ${err.message}\nRun "omg-llava-bot --help" for usage.\n`);
    return exitCodes.usage;
  }

  let config: Config;
  try {
    config = loadConfigFromEnvironment();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    say(`omg-llava-bot: ${err.message}\n`);
    return exitCodes.usage;
  }
  let inputs: AskInputs;
  try {
    inputs = await readInputs(args, { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS });
  } catch (err) {
    const error = toOmgError(err);
    say(`omg-llava-bot: ${error.userMessage}\n`);
    return exitCodeFor(error.code);
  }
  // The CLI always runs its own in-process queue and worker, whatever the service's settings say; its log stays quiet.
  const cliConfig: Config = { ...config, MODEL_DIR: modelDir(args, config), REDIS_URL: undefined, LOG_LEVEL: 'warn' };
  say(`loading model ${cliConfig.MODEL_DIR} ...\n`);
  // Imported here so that --help and input mistakes answer without loading the whole service.
  const { createCore } = await import('../../main.js');
  const core = await createCore(cliConfig, createLogger(cliConfig, process.stderr));
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  try {
    if (core.modelError) throw core.modelError;
    await runAsk(args, inputs, core.service, { stdout: (t) => process.stdout.write(t), stderr: say, streamText: process.stderr.isTTY === true }, abort.signal);
    return exitCodes.ok;
  } catch (err) {
    const error = toOmgError(err);
    say(`omg-llava-bot: ${error.userMessage}\n`);
    // A local tool may show the details a chat reply never would.
    if (error.code === 'OMG_ERR_INTERNAL') say(`${JSON.stringify(error.details ?? {})}\n${String((error.cause as Error | undefined)?.stack ?? error.stack)}\n`);
    return exitCodeFor(error.code);
  } finally {
    await core.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
