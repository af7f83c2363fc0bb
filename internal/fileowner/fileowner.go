// Package fileowner reads the numeric owner of a file where the system has one (Unix), so that the
// server-side checks of ownership compile everywhere and fail closed where owners are not numbers.
package fileowner
