// XO's own client (npm `xen-api`) against the simulator: connect (system.listMethods,
// event.inject, *.get_all_records), keep the object cache in sync through event.from while
// objects change, and run an async call to completion.
//
// Environment: SIM_URL, SIM_USER, SIM_PASSWORD, SIM_TRANSPORT (auto|json-rpc|xml-rpc);
// NODE_EXTRA_CA_CERTS when SIM_URL is https. Run by xo-core/tests/simulator_peers.rs.

import assert from 'node:assert/strict'
import { createClient } from 'xen-api'

const { SIM_URL, SIM_USER, SIM_PASSWORD, SIM_TRANSPORT = 'auto' } = process.env

// xen-api reports protocol trouble (failed event.from, unknown methods…) with console.warn:
// any warning is a fidelity failure.
const warnings = []
console.warn = (...args) => warnings.push(args.map(String).join(' '))

const timeout = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error('timed out waiting for ' + what)), ms).unref())

// Resolves when `predicate()` holds after some cache change.
function until(xapi, what, predicate) {
  if (predicate()) return Promise.resolve()
  return Promise.race([
    new Promise(resolve => {
      const check = () => {
        if (predicate()) {
          xapi.objects.removeListener('add', check)
          xapi.objects.removeListener('update', check)
          xapi.objects.removeListener('remove', check)
          resolve()
        }
      }
      xapi.objects.on('add', check)
      xapi.objects.on('update', check)
      xapi.objects.on('remove', check)
    }),
    timeout(15e3, what),
  ])
}

const byName = (xapi, type, name) =>
  Object.values(xapi.objects.all).find(o => o.$type === type && o.name_label === name)

async function main() {
  const xapi = createClient({
    url: SIM_URL,
    auth: { user: SIM_USER, password: SIM_PASSWORD },
    transport: SIM_TRANSPORT,
    allowUnauthorized: false,
    debounce: 50,
  })
  await xapi.connect()
  await Promise.race([xapi.objectsFetched, timeout(30e3, 'initial fetch')])

  const all = Object.values(xapi.objects.all)
  const types = new Set(all.map(o => o.$type))
  for (const t of ['pool', 'host', 'VM', 'VIF', 'network', 'PIF', 'VLAN', 'SR', 'VDI', 'VBD', 'VM_guest_metrics']) {
    assert.ok(types.has(t), 'missing type ' + t)
  }
  const web = byName(xapi, 'VM', 'web-01')
  assert.ok(web, 'web-01 in cache')
  assert.equal(web.power_state, 'Running')
  assert.equal(xapi.pool.$ref, Object.values(xapi.objects.all).find(o => o.$type === 'pool').$ref)

  // A change made through the API shows up in the cache via event.from.
  await xapi.call('VM.set_name_description', web.$ref, 'changed by the peer test')
  await until(xapi, 'VM update', () => xapi.getObject(web.$ref).name_description === 'changed by the peer test')

  // Creation and deletion.
  const netRef = await xapi.call('network.create', { name_label: 'peer network', name_description: '', MTU: 1500, other_config: {} })
  await until(xapi, 'network add', () => xapi.getObject(netRef, undefined) !== undefined)
  await xapi.call('network.destroy', netRef)
  await until(xapi, 'network remove', () => xapi.getObject(netRef, undefined) === undefined)

  // An async call followed through the task in the cache, with a ref result.
  const build = byName(xapi, 'VM', 'build-01')
  assert.equal(build.power_state, 'Halted')
  await xapi.callAsync('VM.start', build.$ref, false, false)
  await until(xapi, 'VM running', () => xapi.getObject(build.$ref).power_state === 'Running')
  await xapi.callAsync('VM.hard_shutdown', build.$ref)
  const cloneRef = await xapi.callAsync('VM.clone', build.$ref, 'peer clone')
  assert.match(cloneRef, /^OpaqueRef:/)
  await until(xapi, 'clone in cache', () => xapi.getObject(cloneRef, undefined)?.name_label === 'peer clone')

  // Errors keep xapi's code and params.
  await assert.rejects(xapi.call('VM.start', build.$ref, false, false).then(() => xapi.call('VM.start', build.$ref, false, false)), e => e.code === 'VM_BAD_POWER_STATE')
  await assert.rejects(xapi.callAsync('VM.clean_shutdown', cloneRef), e => e.code === 'VM_BAD_POWER_STATE' && e.params[2] === 'halted')

  // The guest agent reports a moment after a start.
  await until(xapi, 'guest metrics', () => {
    const gm = xapi.getObject(xapi.getObject(build.$ref).guest_metrics, undefined)
    return gm !== undefined && gm.networks['0/ip'] !== undefined
  })

  await xapi.disconnect()

  // Pointed at a pool member, xen-api follows HOST_IS_SLAVE to the master.
  if (process.env.SIM_MEMBER_URL) {
    const viaMember = createClient({
      url: process.env.SIM_MEMBER_URL,
      auth: { user: SIM_USER, password: SIM_PASSWORD },
      transport: SIM_TRANSPORT,
      allowUnauthorized: false,
      watchEvents: false,
    })
    await viaMember.connect()
    const pools = await viaMember.call('pool.get_all')
    assert.equal(pools.length, 1)
    await viaMember.disconnect()
  }
  assert.deepEqual(warnings, [], 'xen-api warned')
  console.log(`xen-api peer (${SIM_TRANSPORT}): ok`)
}

main().then(
  () => process.exit(0),
  error => {
    console.error('xen-api peer: FAILED', error)
    process.exit(1)
  }
)
