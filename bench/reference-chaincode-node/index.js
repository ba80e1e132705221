/*
 * Reference chaincode for bench/bench_runtime_peers.py, written with the official Node
 * runtime (fabric-contract-api + fabric-shim) and served as a service:
 *
 *   node node_modules/fabric-shim/cli.js server --chaincode-address HOST:PORT \
 *       --chaincode-id LABEL:HASH --chaincode-tls-cert-file ... --chaincode-tls-key-file ... \
 *       --chaincode-tls-client-cacert-file ...
 *
 * Put and Get behave as in chaincode/smoke.py (the function our runtime is measured with):
 * Put stores the value and returns {"key", "value"} as JSON; Get returns the same or fails
 * when the key does not exist.
 */

'use strict';

const { Contract } = require('fabric-contract-api');

class BenchContract extends Contract {
    constructor() {
        super('bench');
    }

    async Put(ctx, key, value) {
        await ctx.stub.putState(key, Buffer.from(value, 'utf8'));
        return JSON.stringify({ key, value });
    }

    async Get(ctx, key) {
        const value = await ctx.stub.getState(key);
        if (!value || value.length === 0) {
            throw new Error(`key ${JSON.stringify(key)} not found`);
        }
        return JSON.stringify({ key, value: value.toString('utf8') });
    }
}

module.exports.contracts = [BenchContract];
