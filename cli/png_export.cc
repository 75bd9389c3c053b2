#include "png_export.h"

#include "file_io.h"
#include "ropekit/error.h"

#if ROPEKIT_HAVE_RSVG
#include <cairo.h>
#include <librsvg/rsvg.h>

#include <cmath>
#include <exception>
#include <memory>
#endif

namespace ropekit::cli {

#if ROPEKIT_HAVE_RSVG

bool png_supported() { return true; }

namespace {
struct GObjectUnref {
  void operator()(RsvgHandle* h) const { g_object_unref(h); }
};
struct SurfaceDestroy {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct CairoDestroy {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
std::string take_message(GError* e) {
  std::string m = e ? e->message : "unknown error";
  if (e) g_error_free(e);
  return m;
}
}  // namespace

void write_png_from_svg(const std::string& svg, const std::string& path, double scale) {
  GError* err = nullptr;
  std::unique_ptr<RsvgHandle, GObjectUnref> handle(
      rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(svg.data()), svg.size(), &err));
  if (!handle) throw ArgumentError("PNG: the chart's SVG did not parse: " + take_message(err));
  gdouble w = 0, h = 0;
  if (!rsvg_handle_get_intrinsic_size_in_pixels(handle.get(), &w, &h) || !(w > 0 && h > 0))
    throw ArgumentError("PNG: the chart's SVG has no pixel size");
  const int pw = static_cast<int>(std::lround(w * scale)),
            ph = static_cast<int>(std::lround(h * scale));
  std::unique_ptr<cairo_surface_t, SurfaceDestroy> surface(
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, pw, ph));
  std::unique_ptr<cairo_t, CairoDestroy> cr(cairo_create(surface.get()));
  cairo_set_source_rgb(cr.get(), 1.0, 1.0, 1.0);  // opaque white under the chart
  cairo_paint(cr.get());
  const RsvgRectangle viewport{0.0, 0.0, static_cast<double>(pw), static_cast<double>(ph)};
  if (!rsvg_handle_render_document(handle.get(), cr.get(), &viewport, &err))
    throw ArgumentError("PNG: rendering failed: " + take_message(err));
  cairo_surface_flush(surface.get());
  // Through an AtomicFile: every write checked, nothing left behind on failure.
  struct Sink {
    AtomicFile file;
    std::exception_ptr error;
  } sink{AtomicFile(path), nullptr};
  const auto write = [](void* closure, const unsigned char* data, unsigned int n) {
    auto* s = static_cast<Sink*>(closure);
    try {
      s->file.write(data, n);
      return CAIRO_STATUS_SUCCESS;
    } catch (...) {
      s->error = std::current_exception();
      return CAIRO_STATUS_WRITE_ERROR;
    }
  };
  const cairo_status_t st = cairo_surface_write_to_png_stream(surface.get(), write, &sink);
  if (sink.error) std::rethrow_exception(sink.error);
  if (st != CAIRO_STATUS_SUCCESS) {
    throw IoError("cannot write '" + path + "': " + cairo_status_to_string(st));
  }
  sink.file.commit();
}

#else

bool png_supported() { return false; }

void write_png_from_svg(const std::string&, const std::string& path, double) {
  throw ArgumentError(
      "-o " + path +
      ": this ropekit was built without PNG support (it needs librsvg: apt-get install "
      "librsvg2-dev, then rebuild); write a .svg instead");
}

#endif

}  // namespace ropekit::cli
