package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chunker"
)

func init() { registerGroup(newCidCmd) }

// cidOutput is what `satchel cid --json` prints.
type cidOutput struct {
	Root      string           `json:"root"`
	Size      int64            `json:"size"`
	ChunkSize int              `json:"chunkSize"`
	Chunks    []cidChunkOutput `json:"chunks"`
}

type cidChunkOutput struct {
	Index  int    `json:"index"`
	CID    string `json:"cid"`
	Offset int64  `json:"offset"`
	Size   int    `json:"size"`
}

func newCidCmd(app *App) *cobra.Command {
	var chunkSize string
	cmd := &cobra.Command{
		Use:   "cid FILE",
		Short: "Print the content ID of a file",
		Long: `Print the content ID (root CID) a file gets on Satchel. It equals
ipfs add --cid-version=1 --raw-leaves --chunker=size-N for the same chunk size.
With --json, also list every chunk with its CID, offset and size. FILE "-"
reads standard input.`,
		Example: `  satchel cid video.mp4
  satchel cid --chunk-size 256KiB --json video.mp4
  tar c dir | satchel cid -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			size, err := parseChunkSize(chunkSize)
			if err != nil {
				return err
			}
			path := args[0]
			var in io.Reader = cmd.InOrStdin()
			if path != "-" {
				f, err := os.Open(path)
				if errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("file %s does not exist; check the path", path)
				}
				if err != nil {
					return fmt.Errorf("cannot read %s: %w", path, err)
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil && st.IsDir() {
					return fmt.Errorf("%s is a directory; satchel cid takes a file", path)
				}
				in = f
			}
			// Only --json lists the chunks; the nodes are never needed, so
			// the root of a file of any size takes constant memory.
			p := app.Printer()
			res, err := chunker.Sum(cmd.Context(), in, chunker.WithChunkSize(size),
				chunker.WithChunkList(p.JSONMode()), chunker.WithNodes(false))
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			out := cidOutput{Root: res.Root.String(), Size: res.Size, ChunkSize: res.ChunkSize,
				Chunks: make([]cidChunkOutput, len(res.Chunks))}
			for i, c := range res.Chunks {
				out.Chunks[i] = cidChunkOutput{Index: i, CID: c.CID.String(), Offset: c.Offset, Size: c.Size}
			}
			return p.Print(out, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, out.Root)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&chunkSize, "chunk-size", "1MiB",
		"chunk size: bytes (262144), KiB/MiB (256KiB), or IPFS style (size-262144)")
	return cmd
}

// parseChunkSize reads --chunk-size, saying a size too large for a chunk
// (10GiB) is too large rather than not a size.
func parseChunkSize(s string) (int, error) {
	size, err := chunker.ParseChunkSize(s)
	if err == nil {
		return size, nil
	}
	if n, perr := parseBytes(s); perr == nil && n > chunker.MaxChunkSize {
		return 0, fmt.Errorf("--chunk-size %s is too large: a chunk holds at most %d bytes (2 MiB - 256, the IPFS limit)", s, chunker.MaxChunkSize)
	}
	return 0, fmt.Errorf("--chunk-size: %w", err)
}
