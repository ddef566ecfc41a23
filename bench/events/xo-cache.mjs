// XO's xen-api client keeping its object cache (event.inject → get_all_records → event.from),
// reporting when changes made by the Rust bench driver reach the cache.
//
//   node xo-cache.mjs URL USER PASSWORD TYPES [DEBOUNCE_MS]
//
// stdout: `ready <ms> <objects>` once the listing is cached, then `seen <seq> <epoch µs>` the
// first time a VM's name_description reads `bench <seq>` in the cache.
import { Xapi } from 'xen-api'

const [url, user, password, types, debounce] = process.argv.slice(2)
const now = () => Math.round((performance.timeOrigin + performance.now()) * 1000)
const t0 = performance.now()
const xapi = new Xapi({
  url,
  auth: { user, password },
  allowUnauthorized: true,
  watchEvents: types.split(','),
  debounce: debounce === undefined ? undefined : Number(debounce),
})
const seen = new Set()
const check = objects => {
  const t = now()
  for (const o of Object.values(objects)) {
    const d = o.$type === 'VM' && o.name_description
    if (d && d.startsWith('bench ') && !seen.has(d)) {
      seen.add(d)
      process.stdout.write(`seen ${d.slice(6)} ${t}\n`)
    }
  }
}
xapi.objects.on('add', check)
xapi.objects.on('update', check)
await xapi.connect()
await xapi.objectsFetched
process.stdout.write(`ready ${Math.round(performance.now() - t0)} ${xapi.objects.size}\n`)
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
