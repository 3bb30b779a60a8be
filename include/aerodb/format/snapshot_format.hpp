// The three snapshot-related file formats, for code that wants all of them:
//
//   format/snapshot_files.hpp     file names, the valid-name rule, shared conventions
//   format/snapshot_data.hpp      snapshot-<C>.data: the image at a CommitId
//   format/manifest.hpp           snapshot-<C>.manifest: each file's size and CRC32C
//   format/checkpoint_record.hpp  CHECKPOINT: names the current checkpoint's manifest
//
// docs/format.md (section 12) is their prose version. wal_format.hpp comes along because
// this header, when it held all three formats, included it, and code relies on that.
#pragma once

#include <aerodb/format/checkpoint_record.hpp>
#include <aerodb/format/manifest.hpp>
#include <aerodb/format/snapshot_data.hpp>
#include <aerodb/format/snapshot_files.hpp>
#include <aerodb/format/wal_format.hpp>
