package fetch

// GetMemory is what the handler reserves for each GET it holds, for tests
// that fill a budget with a known number of GETs.
const GetMemory = getMemory
