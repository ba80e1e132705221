"""The patchledger chaincode: CCaaS runtime, contract layer and pure lifecycle core."""
