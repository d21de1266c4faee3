#!/usr/bin/env node
// ferry's command line: `ferry check model.json` validates a sync model the
// way the server does at start (exit 0 ok, 1 invalid, 2 usage); with
// `--previous old.json` it also warns about changes that need care;
// `ferry check --app <url or folder>` checks that an app works offline
// (bin/check-app.js; exit 0 ok, 1 problems, 2 the check could not run).
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { validateModel, compareModels } from '../server/model.js';

const USAGE = `usage: ferry check <model.json> [--previous old.json]
                                     validate a sync model (exit 0 ok, 1 errors);
                                     --previous: warn about what changes for devices on old.json
       ferry check --app <url or folder> [--model model.json] [--sync /sync/] [--online-only /api/]...
                                     open the app in headless Chromium, go offline, open and reload
                                     each page: report what failed offline, pages not precached and
                                     model problems (exit 0 ok, 1 problems, 2 the check could not run);
                                     GETs under --sync and each --online-only may fail offline
       ferry help                    this text`;

function load(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    console.error(`ferry check: cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    return 1;
  }
  let json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    console.error(`ferry check: ${file} is not valid JSON: ${e.message}`);
    return 1;
  }
  const { ok, errors, model } = validateModel(json);
  if (!ok) {
    for (const e of errors) console.log(`${e.entity}: ${e.rule}: ${e.message}`);
    console.error(`ferry check: ${file}: ${errors.length} error${errors.length === 1 ? '' : 's'}; the model cannot work offline`);
    return 1;
  }
  return model;
}

function check(file, previous) {
  const model = load(file);
  if (typeof model === 'number') return model;
  const n = Object.keys(model.entities).length;
  console.log(`model ok: ${n} ${n === 1 ? 'entity' : 'entities'} (version ${model.version})`);
  if (previous !== undefined) {
    const prev = load(previous);
    if (typeof prev === 'number') return prev;
    const warnings = compareModels(prev, model);
    for (const w of warnings) console.log(`warning: ${w.entity}: ${w.rule}: ${w.message}`);
    console.log(`${warnings.length} change${warnings.length === 1 ? '' : 's'} from version ${prev.version} need${warnings.length === 1 ? 's' : ''} care`);
  }
  return 0;
}

async function checkAppCommand({ app, model, sync, 'online-only': onlineOnly = [] }) {
  const { checkApp, CheckAppError } = await import('./check-app.js');
  let parsedModel;
  if (model !== undefined) {
    parsedModel = load(model);
    if (typeof parsedModel === 'number') return parsedModel;
  }
  console.log(`ferry check --app ${app}`);
  try {
    const { problems } = await checkApp(app, { model: parsedModel, sync, onlineOnly, log: (line) => console.log(line) });
    if (problems.length) {
      console.error(`ferry check: ${problems.length} problem${problems.length === 1 ? '' : 's'}: the app does not fully work offline`);
      return 1;
    }
    console.log('the app works offline');
    return 0;
  } catch (e) {
    if (!(e instanceof CheckAppError)) throw e;
    console.error(`ferry check: ${e.message}`);
    return 2;
  }
}

async function main(argv) {
  const [cmd, ...rest] = argv;
  if (cmd === 'check') {
    let parsed;
    try {
      parsed = parseArgs({ args: rest, allowPositionals: true, options: {
        previous: { type: 'string' }, app: { type: 'string' }, model: { type: 'string' }, sync: { type: 'string' }, 'online-only': { type: 'string', multiple: true },
      } });
    } catch (e) {
      console.error(`ferry check: ${e.message}\n${USAGE}`);
      return 2;
    }
    if (parsed.values.app !== undefined) {
      if (parsed.positionals.length || parsed.values.previous !== undefined) {
        console.error(`ferry check --app takes no model file (use --model) and no --previous\n${USAGE}`);
        return 2;
      }
      return checkAppCommand(parsed.values);
    }
    if (parsed.positionals.length !== 1) {
      console.error(`ferry check needs exactly one model file\n${USAGE}`);
      return 2;
    }
    return check(parsed.positionals[0], parsed.values.previous);
  }
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return 0;
  }
  console.error(`${cmd === undefined ? 'ferry: no command given' : `ferry: unknown command '${cmd}'`}\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => {
  console.error(`ferry: ${e.stack || e.message}`);
  process.exitCode = 2;
});
