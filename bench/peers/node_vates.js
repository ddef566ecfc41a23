'use strict'
// Times XO's XML-RPC decoding on one file, the way xen-api's transports/xml-rpc.mjs does it:
// xmlRpcParser.parse(parseXml(text)) with parseXml's default options, then the XAPI envelope.
//
// Usage: node node_vates.js FILE RUNS MIN_SECS EXPECT  (run from bench/, where node_modules is)
// Prints one JSON line shaped like xo_bench::Measurement.
const fs = require('node:fs')
const { parseXml } = require('@vates/xml/parse')
const { xmlRpcParser } = require('@vates/xml-rpc/parser')

function statusKb(key) {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find(l => l.startsWith(key + ':'))
  return line === undefined ? 0 : parseInt(line.split(/\s+/)[1], 10)
}

function decode(buf) {
  const response = xmlRpcParser.parse(parseXml(buf.toString('utf8')))
  const result = response.params[0]
  if (result.Status !== 'Success') throw new Error('not a Success envelope')
  return Object.keys(result.Value).length
}

const [file, runs, minSecs, expect] = process.argv.slice(2)
const rssStart = statusKb('VmRSS')
const data = fs.readFileSync(file)
const rssLoaded = statusKb('VmRSS')
const count = decode(data) // warm-up; the high-water mark after it is one decode's peak
const hwm = statusKb('VmHWM')
if (count !== Number(expect)) {
  console.error(`node: decoded ${count} records, expected ${expect}`)
  process.exit(2)
}
const times = []
const cpuTimes = []
const started = process.hrtime.bigint()
const elapsed = since => Number(process.hrtime.bigint() - since) / 1e9
while (times.length < Number(runs) || elapsed(started) < Number(minSecs)) {
  const t = process.hrtime.bigint()
  const cpu = process.cpuUsage()
  decode(data)
  times.push(elapsed(t))
  const used = process.cpuUsage(cpu)
  cpuTimes.push((used.user + used.system) / 1e6)
}
const pkg = require('node:path').join(require.resolve('@vates/xml-rpc/parser'), '..', 'package.json')
const version = JSON.parse(fs.readFileSync(pkg, 'utf8')).version
console.log(JSON.stringify({
  contender: `@vates/xml-rpc ${version} (sax)`,
  runtime: `Node ${process.versions.node}`,
  bytes: data.length, records: count, times, cpu_times: cpuTimes,
  rss_start_kb: rssStart, rss_loaded_kb: rssLoaded, hwm_kb: hwm,
}))
