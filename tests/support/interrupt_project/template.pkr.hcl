# The interrupt matrix's Packer template: Debian's real packer, a file builder (seconds, not
# minutes), and a shell-local step that holds the build phase when MATRIX_BUILD_HOLD is set.
# On SIGINT/SIGTERM its trap (run at once: the shell waits, it does not run sleep in the
# foreground) takes MATRIX_BUILD_CLEANUP seconds, as Packer removing its VM
# does, then leaves a mark: the test checks that a second signal did not cut it short.
variable "os_name" { default = "debian12" }
variable "os_family" { default = "debian" }
variable "os_version" { default = "12" }
variable "output_directory" { default = "out" }
variable "vm_name" { default = "unnamed" }
variable "run_id" { default = "" }
variable "marks" { default = "/nonexistent" }

source "file" "disk" {
  # one sector, then whole MiB: a disk is whole 512-byte blocks (the XVA writer refuses others)
  content = format("%-511s\n", "fake disk image of ${var.os_name} built as ${var.vm_name}")
  target  = "${var.output_directory}/disk.raw"
}

build {
  sources = ["source.file.disk"]
  provisioner "shell-local" {
    inline = [
      "head -c $(( $${MATRIX_ARTIFACT_MB:-1} * 1048576 )) /dev/urandom >> ${var.output_directory}/disk.raw",
      "if [ -n \"$${MATRIX_BUILD_HOLD:-}\" ]; then",
      "  trap 'kill $hold 2>/dev/null; sleep $${MATRIX_BUILD_CLEANUP:-0}; echo done > ${var.marks}/build-cleanup; exit 1' INT TERM",
      "  echo $$ > ${var.marks}/build",
      "  sleep $${MATRIX_BUILD_HOLD} & hold=$!",
      "  wait $hold",
      "fi",
    ]
  }
}
