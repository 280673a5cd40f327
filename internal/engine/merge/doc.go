// Package merge is gotd's merge engine: three-way merges of trees and
// of text files, as server-side rebase needs them. Where C Git's merge
// (merge-ort, without rename detection) would report a conflict, this
// package refuses; where C Git merges cleanly, it produces the same
// tree. It never writes conflict markers: a merge is clean or refused.
package merge
