#!/usr/bin/env node
// ferry's command line: `ferry check model.json` validates a sync model the
// way the server does at start (exit 0 ok, 1 invalid, 2 usage).
import fs from 'node:fs';
import { validateModel } from '../server/model.js';

const USAGE = `usage: ferry check <model.json>    validate a sync model (exit 0 ok, 1 errors)
       ferry help                   this text`;

function check(file) {
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
  const n = Object.keys(model.entities).length;
  console.log(`model ok: ${n} ${n === 1 ? 'entity' : 'entities'} (version ${model.version})`);
  return 0;
}

function main(argv) {
  const [cmd, ...rest] = argv;
  if (cmd === 'check') {
    if (rest.length !== 1) {
      console.error(`ferry check needs exactly one model file\n${USAGE}`);
      return 2;
    }
    return check(rest[0]);
  }
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return 0;
  }
  console.error(`${cmd === undefined ? 'ferry: no command given' : `ferry: unknown command '${cmd}'`}\n${USAGE}`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
