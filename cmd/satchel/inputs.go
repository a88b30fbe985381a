package main

// Inputs the chain commands share: flags that name chain entities (storage
// buckets, workers, bags, bag types) and counts, sizes and limits, used by
// the storage, distributor, put and get commands; and JSON input files.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func storageBucketFlag(cmd *cobra.Command) *valueFlag[chain.StorageBucketID] {
	f := newFlag("", chain.StorageBucketID(0), chain.ParseStorageBucketID, "bucketId")
	cmd.Flags().VarP(f, "bucketId", "i", "storage bucket ID, e.g. 3 (required)")
	requiredFlags(cmd, "bucketId")
	return f
}

func workerFlag(cmd *cobra.Command, usage string, required bool) *valueFlag[chain.WorkerID] {
	f := newFlag("", chain.WorkerID(0), chain.ParseWorkerID, "workerId")
	cmd.Flags().VarP(f, "workerId", "w", usage)
	if required {
		requiredFlags(cmd, "workerId")
	}
	return f
}

func bagFlag(cmd *cobra.Command) *valueFlag[chain.BagID] {
	f := newFlag("", chain.BagID(""), chain.ParseBagID, "bagId")
	cmd.Flags().VarP(f, "bagId", "b", "bag ID: static:council, static:wg:storage, static:wg:distribution, dynamic:member:<id> or dynamic:channel:<id> (required)")
	requiredFlags(cmd, "bagId")
	return f
}

func acceptingFlag(cmd *cobra.Command, def string, usage string) *valueFlag[bool] {
	var v bool
	if def != "" {
		v, _ = parseYesNo(def)
	}
	f := newFlag(def, v, parseYesNo, "yes|no")
	cmd.Flags().VarP(f, "acceptingBags", "a", usage)
	return f
}

func countFlag(cmd *cobra.Command, name, short, usage string) *valueFlag[uint64] {
	f := newFlag("", uint64(0), parseCount, "number")
	cmd.Flags().VarP(f, name, short, usage)
	return f
}

func sizeFlag(cmd *cobra.Command, name, short, usage string) *valueFlag[uint64] {
	f := newFlag("", uint64(0), parseBytes, "size")
	cmd.Flags().VarP(f, name, short, usage)
	return f
}

func dynamicBagTypeFlag(cmd *cobra.Command) *valueFlag[chain.DynamicBagType] {
	f := newFlag("", chain.DynamicBagType(""), chain.ParseDynamicBagType, "Member|Channel")
	cmd.Flags().VarP(f, "type", "t", "dynamic bag type: Member or Channel (required)")
	requiredFlags(cmd, "type")
	return f
}

func limitFlag(cmd *cobra.Command) *valueFlag[uint64] {
	f := countFlag(cmd, "limit", "l", "new limit value (required)")
	requiredFlags(cmd, "limit")
	return f
}

// checkInputFile refuses a FILE argument that does not exist, cannot be
// read or is a directory, before the command loads a key or dials the
// network, so the first error a user meets is the one to fix.
func checkInputFile(path, command string) error {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("file %s does not exist; check the path", path)
	case err != nil:
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a directory; satchel %s takes a file (for a directory: tar c DIR | satchel %s - ...)", path, command, command)
	}
	return nil
}

// deprecateFlag hides flag name from help and has using it print "Flag
// --name has been deprecated, msg" on stderr. Cobra prints pflag's notice
// with the command's Print, on stdout where it would corrupt --json output,
// so the flag set writes it to stderr itself.
func deprecateFlag(app *App, cmd *cobra.Command, name, msg string) {
	if err := cmd.Flags().MarkDeprecated(name, msg); err != nil {
		panic(err) // a misspelled flag name is a programming error
	}
	cmd.Flags().SetOutput(app.Err)
}

// readJSONFile decodes the JSON file at path into v, refusing unknown
// fields so a misspelt key is an error rather than silently dropped.
func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("metadata file %s does not exist; check the path", path)
	}
	if err != nil {
		return fmt.Errorf("read metadata file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("metadata file %s: %w", path, err)
	}
	return nil
}
