// check_pprof.js - decodes a pprof profile with an independent decoder
// (DataDog's pprof-format, vendored as pprof-format-2.1.0.tgz) and prints
// what tests/cli/test_cli_export.c asserts, one tab-separated record a line.
//
//   node check_pprof.js PPROF_FORMAT_DIR PROFILE
//
// Checks the structure on the way (gzip on disk, "" first in the string
// table, ids unique and non-zero, every reference resolves, one value per
// sample type) and exits 1 with "error: ..." lines when something is off.
'use strict';

const fs = require('fs');
const zlib = require('zlib');

const [moduleDir, file] = process.argv.slice(2);
const { Profile } = require(moduleDir);

const errors = [];
const fail = (msg) => errors.push(msg);
const key = (n) => String(n); // ids may decode as Number or BigInt
const hex = (n) => '0x' + BigInt(n).toString(16);

const raw = fs.readFileSync(file);
if (raw[0] !== 0x1f || raw[1] !== 0x8b) {
  console.log('error: not gzip-compressed (profile.proto wants gzip on disk)');
  process.exit(1);
}
const p = Profile.decode(new Uint8Array(zlib.gunzipSync(raw)));
const strings = p.stringTable.strings;
const str = (i) => {
  if (Number(i) >= strings.length) fail(`string index ${i} out of range`);
  return strings[Number(i)];
};

if (strings[0] !== '') fail('string_table[0] is not ""');

function table(list, what) {
  const m = new Map();
  for (const x of list) {
    if (!x.id || Number(x.id) === 0) fail(`${what} with id 0`);
    if (m.has(key(x.id))) fail(`${what} id ${x.id} twice`);
    m.set(key(x.id), x);
  }
  return m;
}
const mappings = table(p.mapping, 'mapping');
const locations = table(p.location, 'location');
const functions = table(p.function, 'function');

console.log(`strings\t${strings.length}`);
for (const t of p.sampleType)
  console.log(`sample_type\t${str(t.type)}\t${str(t.unit)}`);
console.log(`default_sample_type\t${str(p.defaultSampleType)}`);
if (p.periodType)
  console.log(`period_type\t${str(p.periodType.type)}\t${str(p.periodType.unit)}`);
console.log(`period\t${p.period}`);
console.log(`time_nanos\t${p.timeNanos}`);
console.log(`duration_nanos\t${p.durationNanos}`);
for (const c of p.comment) console.log(`comment\t${str(c)}`);

for (const m of p.mapping) {
  console.log(['mapping', m.id, hex(m.memoryStart), hex(m.memoryLimit),
    hex(m.fileOffset), str(m.filename), str(m.buildId),
    +m.hasFunctions, +m.hasFilenames, +m.hasLineNumbers,
    +m.hasInlineFrames].join('\t'));
}

for (const f of p.function) {
  str(f.name);
  str(f.systemName);
  str(f.filename);
}

// A location's names, innermost first; checks its references.
function names(loc) {
  if (Number(loc.mappingId) && !mappings.has(key(loc.mappingId)))
    fail(`location ${loc.id}: no mapping ${loc.mappingId}`);
  return loc.line.map((l) => {
    const f = functions.get(key(l.functionId));
    if (!f) {
      fail(`location ${loc.id}: no function ${l.functionId}`);
      return '?';
    }
    return str(f.name);
  });
}

for (const loc of p.location) {
  console.log(['location', loc.id, hex(loc.address), loc.mappingId,
    loc.line.length, loc.line.map((l) => l.line).join(',')].join('\t'));
}

for (const s of p.sample) {
  if (s.value.length !== p.sampleType.length)
    fail(`sample with ${s.value.length} values for ${p.sampleType.length} types`);
  const locs = s.locationId.map((id) => {
    const l = locations.get(key(id));
    if (!l) fail(`sample: no location ${id}`);
    return l;
  }).filter((l) => l);
  // Folded, outermost first, like `memprof export -f collapsed`.
  const frames = [];
  for (const l of locs) frames.push(...names(l));
  const folded = frames.slice().reverse().join(';');
  let leaf = ['', '', 0];
  if (locs.length && locs[0].line.length) {
    const l = locs[0].line[0];
    const f = functions.get(key(l.functionId));
    if (f) leaf = [str(f.name), str(f.filename), l.line];
  }
  let bytes = '';
  for (const lb of s.label)
    if (str(lb.key) === 'bytes') bytes = String(lb.num);
  console.log(['sample', ...leaf, ...s.value.map(String), bytes, folded]
    .join('\t'));
}

for (const e of errors) console.log(`error: ${e}`);
process.exit(errors.length ? 1 : 0);
