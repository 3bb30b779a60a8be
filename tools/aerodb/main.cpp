// `aerodb`: inspect a data directory from the shell. The commands are in commands.hpp;
// docs/cli.md describes each one and the exit codes.
#include "commands.hpp"

#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <limits>

int main(int argc, char** argv) {
  CLI::App app{"aerodb: inspect an AeroDB data directory (and, with repair --yes, cut a damaged log)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "aerodb (format version " + std::to_string(aerodb::format::wal_format_version) + ")");

  std::string dir;
  auto* info = app.add_subcommand("info", "Recovery report, collections and document counts, log and snapshot sizes");
  bool json = false;
  info->add_option("dir", dir, "The data directory")->required();
  info->add_flag("--json", json, "Print one JSON object instead of text");

  auto* verify = app.add_subcommand(
      "verify", "Read every file and check every checksum; exit 1 and name the file and byte offset on damage");
  verify->add_option("dir", dir, "The data directory")->required();
  bool progress = false;
  verify->add_flag("--progress", progress,
                   "Print recovery's phases on stderr as it goes (each phase's begin and end, every 1% between)");

  auto* dump = app.add_subcommand("dump-wal", "Print the log's records as JSON lines, oldest first");
  aerodb::commit_id from = 0, to = std::numeric_limits<aerodb::commit_id>::max();
  dump->add_option("dir", dir, "The data directory")->required();
  dump->add_option("--from", from, "First CommitId to print (default: the first in the log)");
  dump->add_option("--to", to, "Last CommitId to print (default: the last)");

  std::string query_json;
  bool explain = false;
  auto* query = app.add_subcommand("query", "Run a query (docs/queries.md) and print the documents as JSON lines");
  query->add_option("dir", dir, "The data directory")->required();
  query->add_option("query", query_json, "The query, as JSON")->required();
  query->add_flag("--explain", explain, "Print the plan (JSON on stdout, text on stderr) instead of running it");
  bool all_pages = false;
  query->add_flag("--all", all_pages,
                  "Page through every result: one bounded query per page of `limit` documents, under one read view");

  std::string dest;
  auto* backup = app.add_subcommand(
      "backup", "Write a consistent copy of the store to a new directory (opens the store: not while another process has it open)");
  backup->add_option("dir", dir, "The data directory")->required();
  backup->add_option("dest", dest, "The new directory to write the copy to")->required();

  auto* checkpoint = app.add_subcommand(
      "checkpoint", "Fold the log into a snapshot and remove the segments it covers (opens the store)");
  checkpoint->add_option("dir", dir, "The data directory")->required();

  std::string collection, file;
  auto* exp = app.add_subcommand("export", "Write a collection as JSON lines (a header line, then one line per document)");
  exp->add_option("dir", dir, "The data directory")->required();
  exp->add_option("collection", collection, "The collection")->required();
  exp->add_option("--out", file, "A new file to write (owner-only); default stdout");

  std::size_t batch = 1000;
  auto* imp = app.add_subcommand("import", "Insert an export's documents, in batches of one commit each (opens the store)");
  imp->add_option("dir", dir, "The data directory (created if missing)")->required();
  imp->add_option("--in", file, "The export to read; default stdin");
  imp->add_option("--batch", batch, "Documents per commit (1..100000, default 1000)")->check(CLI::Range(1, 100000));

  bool yes = false;
  std::string keep;
  auto* repair = app.add_subcommand(
      "repair",
      "Cut a damaged log at its damaged record. Prints which bytes and CommitIds the cut discards and "
      "proves it on an in-memory copy; changes nothing without --yes (exit 1 on damage, 0 when there "
      "is nothing to repair)");
  repair->add_option("dir", dir, "The data directory")->required();
  repair->add_flag("--yes", yes,
                   "Apply the plan: copy the discarded bytes to the keep directory, then truncate the "
                   "damaged segment and remove the later ones (takes the store's lock)");
  repair->add_option("--keep", keep,
                     "A new directory to copy the discarded bytes to (default: DIR.repair-<UTC "
                     "yyyymmddThhmmssZ> beside DIR)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, the version or the error
    return code == 0 ? 0 : aerodb::cli::exit_usage;
  }
  if (from > to) {
    std::cerr << "error: --from " << from << " is above --to " << to << "\n";
    return aerodb::cli::exit_usage;
  }
  if (*info) return aerodb::cli::run_info(dir, json, std::cout, std::cerr);
  if (*verify) return aerodb::cli::run_verify(dir, std::cout, std::cerr, progress);
  if (*query) return aerodb::cli::run_query(dir, query_json, explain, all_pages, std::cout, std::cerr);
  if (*exp) return aerodb::cli::run_export(dir, collection, file, std::cout, std::cerr);
  if (*imp) {
    if (file.empty()) return aerodb::cli::run_import(dir, std::cin, batch, std::cout, std::cerr);
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::cerr << "error: cannot read " << file << "\n";
      return aerodb::cli::exit_unreadable;
    }
    return aerodb::cli::run_import(dir, in, batch, std::cout, std::cerr);
  }
  if (*backup) return aerodb::cli::run_backup(dir, dest, std::cout, std::cerr);
  if (*checkpoint) return aerodb::cli::run_checkpoint(dir, std::cout, std::cerr);
  if (*repair) return aerodb::cli::run_repair(dir, yes, keep, std::cout, std::cerr);
  return aerodb::cli::run_dump_wal(dir, from, to, std::cout, std::cerr);
}
