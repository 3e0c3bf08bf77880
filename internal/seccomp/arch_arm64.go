package seccomp

import specs "github.com/opencontainers/runtime-spec/specs-go"

const nativeArch = specs.ArchAARCH64

// cloneFlagsArg is the index of clone's flags argument.
const cloneFlagsArg = 0
