// AERODB_CHECK_LIFETIMES, 0 or 1: whether the lifetime rules of read views are checked,
// each by an abort with a message at the moment it is broken:
//   - destroying a database while read views it made are still open (engine/gc.hpp);
//   - using a document_ref after the read view that handed it out was closed
//     (document/document_ref.hpp).
// On unless NDEBUG is defined, like assert(); define it to 1 to keep the checks in a
// release build, to 0 to drop them from a debug one. Unlike assert() it decides inline
// functions and the layout of document_ref, so every translation unit of one program must
// see the same value.
#pragma once

#ifndef AERODB_CHECK_LIFETIMES
#ifdef NDEBUG
#define AERODB_CHECK_LIFETIMES 0
#else
#define AERODB_CHECK_LIFETIMES 1
#endif
#endif
