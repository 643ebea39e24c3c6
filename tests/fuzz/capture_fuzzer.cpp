// libFuzzer target: arbitrary bytes as a capture file (`palisade agent --replay`), every record
// in it decoded as the live pipeline would. A capture may come from anywhere: framing errors are
// refused, records are bounds-checked, nothing may crash, hang or leak.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "decode/decoder.h"
#include "palisade/agent/capture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::agent;
  static const DecoderTable decoders;
  const int fd = memfd_create("capture", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (write(fd, data, size) == static_cast<ssize_t>(size)) {
    try {
      RecordedSource source("/proc/self/fd/" + std::to_string(fd));
      palisade::Event event;
      const RecordCallback decode = [&](RecordView record) {
        (void)decoders.decode(record, event);
      };
      while (source.poll(std::chrono::milliseconds(0), decode)) {
      }
    } catch (const std::exception&) {
    }
  }
  close(fd);
  return 0;
}
