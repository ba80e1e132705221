'use strict';
// One measurement of the official Node Gateway client, driven by bench/bench_client.py.
//
//   node bench.js '<json settings>'
//
// settings: {peer, tlsCa, mspId, mspDir, channel, chaincode, mode: "submit"|"evaluate",
//            signer: "default"|"openssl", inFlight, seconds, warmup, keyPrefix, getKey}
// Keeps `inFlight` calls outstanding for `warmup` + `seconds`; prints one JSON line with the
// calls completed in the measured window, their latencies (ms) and this process's CPU time
// (user + system, all threads) over the window.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');

const s = JSON.parse(process.argv[2]);

function only(dir) {
    const files = fs.readdirSync(dir);
    if (files.length !== 1) throw new Error(`expected one file in ${dir}`);
    return path.join(dir, files[0]);
}

// P-256 group order; Fabric refuses high-S signatures, OpenSSL does not normalise them.
const N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

function derInt(buf, at) {
    if (buf[at] !== 0x02) throw new Error('bad DER integer');
    const len = buf[at + 1];
    return [BigInt('0x' + buf.subarray(at + 2, at + 2 + len).toString('hex')), at + 2 + len];
}

function intDer(n) {
    let hex = n.toString(16);
    if (hex.length % 2) hex = '0' + hex;
    let b = Buffer.from(hex, 'hex');
    if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return Buffer.concat([Buffer.from([0x02, b.length]), b]);
}

function lowS(der) {
    const [r, next] = derInt(der, 2);
    let [sv] = derInt(der, next);
    if (sv <= N / 2n) return der;
    sv = N - sv;
    const body = Buffer.concat([intDer(r), intDer(sv)]);
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

async function main() {
    const keyPem = fs.readFileSync(only(path.join(s.mspDir, 'keystore')));
    const certPem = fs.readFileSync(only(path.join(s.mspDir, 'signcerts')));
    const privateKey = crypto.createPrivateKey(keyPem);
    let signer;
    let hashOption;
    if (s.signer === 'openssl') {
        // the message as given (hash.none); node:crypto hashes and signs it in OpenSSL
        hashOption = hash.none;
        signer = async (message) => lowS(crypto.sign('sha256', message, privateKey));
    } else {
        hashOption = hash.sha256;
        signer = signers.newPrivateKeySigner(privateKey);
    }
    const client = new grpc.Client(s.peer, grpc.credentials.createSsl(fs.readFileSync(s.tlsCa)), {
        'grpc.max_receive_message_length': 100 * 1024 * 1024,
        'grpc.max_send_message_length': 100 * 1024 * 1024,
    });
    const gateway = connect({
        client,
        identity: { mspId: s.mspId, credentials: certPem },
        signer,
        hash: hashOption,
        evaluateOptions: () => ({ deadline: Date.now() + 30000 }),
        endorseOptions: () => ({ deadline: Date.now() + 60000 }),
        submitOptions: () => ({ deadline: Date.now() + 30000 }),
        commitStatusOptions: () => ({ deadline: Date.now() + 120000 }),
    });
    const contract = gateway.getNetwork(s.channel).getContract(s.chaincode);

    let counter = 0;
    const call = s.mode === 'evaluate'
        ? () => contract.evaluateTransaction('Get', s.getKey)
        : () => {
            counter += 1;
            const key = `${s.keyPrefix}-${counter}`;
            return contract.submitTransaction('Put', key, `value-${counter}`);
        };

    const start = Date.now();
    const measureFrom = start + s.warmup * 1000;
    const end = measureFrom + s.seconds * 1000;
    const latencies = [];
    let errors = 0;
    let firstError = '';
    let cpuStart = null;
    let windowStart = 0;
    const armer = setTimeout(() => { cpuStart = process.cpuUsage(); windowStart = Date.now(); },
        s.warmup * 1000);

    async function worker() {
        while (Date.now() < end) {
            const t0 = performance.now();
            const began = Date.now();
            try {
                await call();
                if (began >= measureFrom) latencies.push(performance.now() - t0);
            } catch (err) {
                errors += 1;
                if (!firstError) firstError = String(err && err.message || err);
            }
        }
    }
    await Promise.all(Array.from({ length: s.inFlight }, worker));
    const cpu = process.cpuUsage(cpuStart);
    const elapsed = (Date.now() - windowStart) / 1000;
    clearTimeout(armer);
    gateway.close();
    client.close();
    process.stdout.write(JSON.stringify({
        count: latencies.length,
        seconds: elapsed,
        cpu_seconds: (cpu.user + cpu.system) / 1e6,
        latencies_ms: latencies,
        errors,
        first_error: firstError,
    }) + '\n');
}

main().catch((err) => { console.error(err); process.exit(1); });
