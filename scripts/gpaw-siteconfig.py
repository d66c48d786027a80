# GPAW build configuration used by scripts/setup.sh: serial GPAW (no MPI, no ScaLAPACK, no ELPA),
# libxc and OpenBLAS from Debian (apt-get install libxc-dev libopenblas-dev), numpy's FFT.
mpi = False
compiler = 'gcc'
libraries = ['xc', 'openblas']
fftw = False
scalapack = False
elpa = False
