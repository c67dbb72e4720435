// Package migration joins uri, crypto and channel into migration tasks and streams (work in progress).
package migration
