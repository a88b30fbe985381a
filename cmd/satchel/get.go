package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/client"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// getOutput is what `satchel get --json` prints.
type getOutput struct {
	Object *chain.ObjectID `json:"object,omitempty"`
	Bag    chain.BagID     `json:"bag,omitempty"`
	CID    string          `json:"cid"`
	Size   int64           `json:"size"`
	Offset int64           `json:"offset"`
	Bytes  int64           `json:"bytes"`
	File   string          `json:"file"`
}

func newGetCmd(app *App) *cobra.Command {
	var (
		out, bagFlag, offsetFlag, lengthFlag string
		fsync                                bool
		busyWait                             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "get OBJECT -o FILE",
		Short: "Read a stored object (by object ID or CID) into a file",
		Long: `Read a data object back from the storage providers into FILE. OBJECT is an
object ID (looked up on chain; --bag saves searching every bag) or a content
ID (CID; --bag says whose providers to ask, else every storage provider the
chain names is asked).

Chunks are read in parallel from several providers, the fastest first, and
every byte is verified against its CID; a provider that fails or sends wrong
bytes is skipped. A regular FILE is written atomically: the bytes go to a
temporary file beside it (.FILE.<digits>.satchel.part), renamed to FILE once
complete and verified; a failed or interrupted get removes the temporary file
and leaves an existing FILE as it was (one left by a get killed outright is
removed by a later get to FILE once unwritten for 10 minutes). Through a
symbolic link, even a dangling one, the link's target is written and the link
kept; as the kernel does, a link in a shared sticky directory such as /tmp is
followed only if you or the directory's owner own it. A new FILE gets mode
0666 less the umask; a replaced one keeps its mode, owner and group. A FILE
you may not write is refused, as curl -o refuses it. A FILE that cannot be
replaced by renaming — a mount point (a file bind-mounted into a container), a
file with other hard links, one in a directory you cannot write, or one whose
owner you cannot give the new file — is fetched into a temporary file (beside
it, else in the temporary or your cache directory, the first with room) and
copied into it once complete and verified, so a failed get leaves it as it
was; only where no such place has room is it truncated and written straight
from the network, and a get failing after its first byte leaves it partial.

Anything else that exists at FILE (a device such as /dev/null, a FIFO, a
pipe, a terminal) is written straight to and never replaced, if named itself
(through a symbolic link it is refused); a failed read may then leave part of
the bytes written. A FILE naming a descriptor
(/dev/stderr, /dev/fd/3, /proc/self/fd/3, or a link to one) is written
through it, at its offset, as the shell opened it (3>>app.log appends).
Without -o (or with -o - or -o /dev/stdout) the bytes go to standard output,
wherever it points: a file it is redirected to is written at its offset,
never replaced.

A regular FILE is written with direct I/O in large writes where the file
system allows it (it then does not fill the page cache, which costs more CPU
than the rest of the get), and is not synced (like curl, wget and ipfs get):
it is whole or absent, but a power loss soon after may lose it. --fsync makes
it durable before the command returns; through the page cache it is flushed
in steps while the rest is still being fetched. A FILE its file system has no
room for is refused before the object's bytes are fetched.

--offset and --length read a range (--length 0: to the end); an offset at or
past the end is an error. A progress bar is drawn on stderr when it is a
terminal and not the output itself (-o /dev/stderr), never with --json.`,
		Example: `  satchel get 12 -o video.mp4 --bag dynamic:channel:1
  satchel get bafybeib…q4 -o video.mp4
  satchel get 12 --bag dynamic:channel:1 --offset 1MiB --length 4096 -o part.bin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var bag chain.BagID
			if bagFlag != "" {
				b, err := chain.ParseBagID(bagFlag)
				if err != nil {
					return fmt.Errorf("--bag: %w", err)
				}
				bag = b
			}
			ref, err := client.ParseRef(args[0], bag)
			if err != nil {
				return err
			}
			var off, length uint64
			if offsetFlag != "" {
				if off, err = parseBytes(offsetFlag); err != nil {
					return fmt.Errorf("--offset: %w", err)
				}
			}
			if lengthFlag != "" {
				if length, err = parseBytes(lengthFlag); err != nil {
					return fmt.Errorf("--length: %w", err)
				}
			}
			if busyWait < 0 {
				return fmt.Errorf("--busy-wait %s: want 0 or more", busyWait)
			}
			toStdout := out == "" || out == "-" || namesStdout(out)
			if toStdout && app.JSON {
				return errors.New("--json needs -o FILE: without it the object's bytes go to standard output")
			}
			var dest *output
			if !toStdout {
				if err := checkOutputDir(out); err != nil {
					return err
				}
				// Before the client opens descriptors of its own: -o
				// /dev/fd/7 without a 7> must fail, not name a socket.
				if dest, err = openOutput(out); err != nil {
					return err
				}
				defer dest.Close()
			}
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			tuneGC()
			c, _, closeFn, err := openClient(app, cfg, chain.Key{}, 0, client.WithBusyWait(busyWait))
			if err != nil {
				return err
			}
			defer closeFn()

			ctx := cmd.Context()
			bar := newProgressBar(app, "get "+args[0])
			if dest.sharesFile(app.Err) {
				bar = nil // -o /dev/stderr: a bar there would land in the bytes
			}
			r, err := c.Open(ctx, ref, client.WithProgress(bar.update))
			if err != nil {
				bar.done(false)
				return getError(app, cfg, err)
			}
			defer r.Close()
			if int64(off) >= r.Size() {
				bar.done(false)
				return fmt.Errorf("--offset %d is past the end of %s, which holds %d bytes (%s); want an offset below %d", off, ref, r.Size(), formatBytes(uint64(r.Size())), r.Size())
			}
			n := int64(length)
			if n == 0 || n > r.Size()-int64(off) {
				n = r.Size() - int64(off)
			}
			var written int64
			direct := toStdout
			ow := &outputWriter{}
			if toStdout {
				ow.w = cmd.OutOrStdout()
				written, err = r.WriteRange(ctx, ow, int64(off), n)
			} else {
				written, direct, err = dest.write(fsync, n, func(w io.Writer) (int64, error) {
					ow.w = w
					return r.WriteRange(ctx, ow, int64(off), n)
				})
			}
			bar.done(err == nil)
			if err != nil {
				dest := out
				if toStdout {
					dest = "standard output"
				}
				if ow.err != nil && written > 0 {
					// The output failed (a full disk, a closed pipe), not the read.
					return fmt.Errorf("cannot write %s after %d bytes: %w", dest, written, ow.err)
				}
				if ow.err != nil {
					return fmt.Errorf("cannot write %s: %w", dest, ow.err)
				}
				if direct && written > 0 {
					// Written straight to: what is there is partial.
					if errors.Is(err, context.Canceled) {
						return fmt.Errorf("interrupted after writing %d bytes to %s; the output is partial", written, dest)
					}
					return fmt.Errorf("%s received %d bytes, a partial output, before the read failed: %w", dest, written, getError(app, cfg, err))
				}
				return getError(app, cfg, err)
			}
			if toStdout {
				return nil
			}
			res := getOutput{CID: r.CID().String(), Size: r.Size(), Offset: int64(min(off, uint64(r.Size()))), Bytes: written, File: out}
			if obj, ok := r.Object(); ok {
				res.Object, res.Bag = &obj.ID, obj.Bag
			}
			return app.Printer().Print(res, func(w io.Writer) error {
				what := res.CID
				if res.Object != nil {
					what = fmt.Sprintf("object %d of bag %s (%s)", *res.Object, res.Bag, res.CID)
				}
				_, err := fmt.Fprintf(w, "wrote %d bytes (%s) of %s to %s\n", written, formatBytes(uint64(written)), what, out)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the `FILE` to write (default: standard output)")
	cmd.Flags().StringVarP(&bagFlag, "bag", "b", "", "the object's bag, e.g. dynamic:channel:1")
	cmd.Flags().StringVar(&offsetFlag, "offset", "", "first byte to read (bytes or a size such as 1MiB)")
	cmd.Flags().StringVar(&lengthFlag, "length", "", "number of bytes to read (default: to the end)")
	cmd.Flags().DurationVar(&busyWait, "busy-wait", fetch.DefaultBusyWait, "how long to keep asking again for a chunk every provider holding it answers busy (loaded by other readers) before failing with providers busy (0: fail at once)")
	cmd.Flags().BoolVar(&fsync, "fsync", false, "sync FILE to the disk before returning (durable against a power loss; slower)")
	return cmd
}

// namesStdout reports whether path names the command's standard output
// (/dev/stdout, /dev/fd/1, a link to one of them, or stdout in /dev).
// Followed as a link it may lead to a regular file (a shell redirection),
// which must be written through the descriptor at its offset, not replaced
// by a renamed temporary file.
func namesStdout(path string) bool {
	dest, err := resolveOutput(path)
	return err == nil && dest.fd == 1
}

// outputWriter passes a get's bytes to w and keeps the first error of w,
// so a failure of the output is not reported as one of the read.
type outputWriter struct {
	w   io.Writer
	err error
}

func (o *outputWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil && o.err == nil {
		o.err = err
	}
	return n, err
}

// getError explains a failed get.
func getError(app *App, cfg Config, err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted; nothing was written")
	case errors.Is(err, client.ErrNoProviderReachable), errors.Is(err, client.ErrNotFound):
		return err
	}
	return explain(app, cfg, err, nil)
}
