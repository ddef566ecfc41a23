// Times XO's xen-api npm client against a XAPI endpoint.
// Usage: node xen_api_bench.mjs URL USER PASSWORD SMALL_CALLS RECORD_RUNS TRANSPORT
// Prints one JSON line like xenapi_bench.py.
import { createClient } from 'xen-api'

const [url, user, password, small, runs, transport] = process.argv.slice(2)
const xapi = createClient({
  url,
  auth: { user, password },
  allowUnauthorized: true,
  watchEvents: false, // time the calls, not the object cache
  transport: transport || 'auto',
})
await xapi.connect()
try {
  await xapi.call('pool.get_all')
  let t = performance.now()
  for (let i = 0; i < Number(small); i++) await xapi.call('pool.get_all')
  const smallRate = Number(small) / ((performance.now() - t) / 1000)

  const times = []
  let vms = 0
  for (let i = 0; i < Number(runs); i++) {
    t = performance.now()
    const records = await xapi.call('VM.get_all_records')
    times.push(performance.now() - t)
    vms = Object.keys(records).length
  }
  times.sort((a, b) => a - b)
  console.log(JSON.stringify({
    client: `node xen-api (${transport || 'auto'})`,
    small_calls_per_s: smallRate,
    get_all_records_ms: times[Math.floor(times.length / 2)],
    vms,
  }))
} finally {
  await xapi.disconnect()
}
